// HTML character references (internal to the prompt clean-up, lib/text/prompt_clean.cpp).
#pragma once
#include <string>
#include <string_view>

namespace reel::text {

// Python's html.unescape: numeric references exactly (Windows-1252 for 0x80..0x9F, U+FFFD
// for 0, surrogates and values past U+10FFFF, nothing for the invalid code points), named
// references from reel's entity subset, with HTML5's legacy forms without ';'.
std::u32string html_unescape(std::u32string_view s);

// ftfy.fixes.unescape_html: only "&name;" and "&#...;" (1-24 alphanumerics and a ';'), plus
// all-caps variants of lower-case names ("&EACUTE;" → "É").
std::u32string ftfy_unescape_html(std::u32string_view s);

// Windows-1252 for U+0080..U+009F (undefined bytes map to themselves); other values unchanged.
char32_t windows1252(char32_t c);

}  // namespace reel::text
