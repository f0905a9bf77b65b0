// UTF-8 <-> code points for the prompt clean-up (internal). Invalid UTF-8 is rejected with
// invalid_argument naming the byte offset: a prompt is text, and Python (the reference) cannot
// even hold malformed UTF-8 in a str.
#pragma once
#include <string>
#include <string_view>

#include "reel/status.hpp"

namespace reel::text {

inline std::u32string utf8_decode(std::string_view s, std::string_view what = "prompt") {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  auto fail = [&](size_t at) {
    throw Error(StatusCode::invalid_argument,
                std::string(what) + " is not valid UTF-8 (bad byte sequence at byte " + std::to_string(at) + ")");
  };
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    char32_t cp = 0;
    if (c < 0x80) {
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, cp = c & 0x07;
    } else {
      fail(i);
    }
    if (i + size_t(extra) >= s.size() && extra > 0) fail(i);  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((d & 0xC0) != 0x80) fail(i);
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      fail(i);
    out.push_back(cp);
    i += size_t(extra) + 1;
  }
  return out;
}

inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

inline std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

}  // namespace reel::text
