// clean_prompt: diffusers' Wan `prompt_clean` (wan.md §4.3) — ftfy.fix_text, html.unescape
// twice, strip, whitespace runs → one space — with the part of ftfy.fix_text that is plain
// character mapping reproduced step by step (fixes.py of ftfy 6.3, default configuration).
// Not reproduced: mojibake detection (fix_encoding), NFC, half-width katakana/hangul widths.
#include <string>

#include "reel/text_encoder.hpp"
#include "text/html_unescape.hpp"
#include "text/utf8.hpp"

namespace reel {

namespace {

using text::html_unescape;

// Python's str.isspace() — what re's \s and str.strip() use on str.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ftfy fix_c1_controls: C1 controls read as Windows-1252.
void fix_c1_controls(std::u32string& s) {
  for (char32_t& c : s) c = text::windows1252(c);
}

// ftfy fix_latin_ligatures (its LIGATURES table).
std::u32string fix_latin_ligatures(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    switch (c) {
      case 0x0132: out += U"IJ"; break;
      case 0x0133: out += U"ij"; break;
      case 0x0149: out += U"\u02BCn"; break;
      case 0x01F1: out += U"DZ"; break;
      case 0x01F2: out += U"Dz"; break;
      case 0x01F3: out += U"dz"; break;
      case 0x01C4: out += U"D\u017D"; break;
      case 0x01C5: out += U"D\u017E"; break;
      case 0x01C6: out += U"d\u017E"; break;
      case 0x01C7: out += U"LJ"; break;
      case 0x01C8: out += U"Lj"; break;
      case 0x01C9: out += U"lj"; break;
      case 0x01CA: out += U"NJ"; break;
      case 0x01CB: out += U"Nj"; break;
      case 0x01CC: out += U"nj"; break;
      case 0xFB00: out += U"ff"; break;
      case 0xFB01: out += U"fi"; break;
      case 0xFB02: out += U"fl"; break;
      case 0xFB03: out += U"ffi"; break;
      case 0xFB04: out += U"ffl"; break;
      case 0xFB05: out += U"\u017Ft"; break;
      case 0xFB06: out += U"st"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// ftfy fix_character_width, for U+3000, the full-width ASCII block U+FF01..U+FF60 and the
// full-width/half-width signs U+FFE0..U+FFEE (NFKC of each). The half-width katakana and hangul
// (U+FF61..U+FFDC) are not mapped: SentencePiece's NFKC normaliser maps them before tokenizing.
std::u32string fix_character_width(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c == 0x3000) out.push_back(U' ');
    else if (c >= 0xFF01 && c <= 0xFF5E) out.push_back(c - 0xFEE0);
    else if (c == 0xFF5F) out.push_back(0x2985);
    else if (c == 0xFF60) out.push_back(0x2986);
    else if (c >= 0xFFE0 && c <= 0xFFEE) {
      static constexpr char32_t kSigns[15] = {0xA2,   0xA3,   0xAC,   0,      0xA6,   0xA5,   0x20A9, 0xFFE7,
                                              0x2502, 0x2190, 0x2191, 0x2192, 0x2193, 0x25A0, 0x25CB};
      if (c == 0xFFE3) out += U" \u0304";  // FULLWIDTH MACRON → space + combining macron
      else out.push_back(kSigns[c - 0xFFE0]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ftfy uncurl_quotes: [\u02bc\u2018-\u201b] → ' and [\u201c-\u201f] → ".
void uncurl_quotes(std::u32string& s) {
  for (char32_t& c : s) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    else if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
}

// ftfy fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 → \n.
std::u32string fix_line_breaks(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;  // the \n follows
    out.push_back((c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c);
  }
  return out;
}

// ftfy remove_terminal_escapes: ESC '[' [0-9;]* [A-Za-z].
std::u32string remove_terminal_escapes(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';')) ++j;
      if (j < s.size() && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
        i = j;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// ftfy remove_control_chars: U+00..08, 0B, 0E..1F, 7F, U+206A..206F, FEFF, FFF9..FFFC.
std::u32string remove_control_chars(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
    if (!control) out.push_back(c);
  }
  return out;
}

// ftfy fix_and_explain on one segment: the fixers in ftfy's order until nothing changes.
std::u32string fix_segment(std::u32string s, bool unescape) {
  while (true) {
    const std::u32string before = s;
    if (unescape) s = text::ftfy_unescape_html(s);
    // (fix_encoding: mojibake repair — not reproduced)
    fix_c1_controls(s);
    s = fix_latin_ligatures(s);
    s = fix_character_width(s);
    uncurl_quotes(s);
    s = fix_line_breaks(s);
    // (fix_surrogates: UTF-8 input cannot hold surrogates)
    s = remove_terminal_escapes(s);
    s = remove_control_chars(s);
    // (NFC normalisation — not reproduced; SentencePiece's NFKC normaliser subsumes it)
    if (s == before) return s;
  }
}

// ftfy.fix_text: segments end after each '\n' (and at most 1M code points); once a segment
// holds a '<' the text is taken for HTML and no later segment is unescaped.
std::u32string ftfy_fix_text(std::u32string_view s) {
  constexpr size_t kMaxSegment = 1000000;
  std::u32string out;
  out.reserve(s.size());
  bool unescape = true;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(U'\n', pos);
    end = end == std::u32string_view::npos ? s.size() : end + 1;
    if (end - pos > kMaxSegment) end = pos + kMaxSegment;
    const std::u32string_view segment = s.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_segment(std::u32string(segment), unescape);
    pos = end;
  }
  return out;
}

// str.strip() and re.sub(r"\s+", " ", ...): runs of whitespace become one space, none at the ends.
std::u32string collapse_whitespace(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char32_t c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string clean_prompt(std::string_view utf8) {
  std::u32string s = text::utf8_decode(utf8);
  s = ftfy_fix_text(s);
  s = html_unescape(html_unescape(s));
  return text::utf8_encode(collapse_whitespace(s));
}

}  // namespace reel
