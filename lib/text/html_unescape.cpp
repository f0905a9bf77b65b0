// HTML character references for the prompt clean-up (wan.md §4.3): Python's html.unescape and
// ftfy's stricter unescape_html, over a named-entity subset (the table below) and every
// numeric reference. Entities outside the table are left as written (docs/text_encoder.md).
#include "text/html_unescape.hpp"

#include <string>
#include <unordered_map>

#include "text/utf8.hpp"

namespace reel::text {

namespace {

struct Entity {
  const char* name;   // without '&' and ';'
  const char* value;  // UTF-8
  bool legacy;        // HTML5 also accepts it without the ';' (html.entities.html5[name])
  const char* upper;  // ftfy's all-caps variant &NAME; (value.upper()), or null
};

// The Latin-1 set, the HTML 4 specials and common symbols, with HTML5's legacy flags.
constexpr Entity kEntities[] = {
    {"amp", "&", true, nullptr},
    {"lt", "<", true, nullptr},
    {"gt", ">", true, nullptr},
    {"quot", "\"", true, nullptr},
    {"apos", "'", false, "'"},
    {"nbsp", "\u00A0", true, "\u00A0"},
    {"iexcl", "\u00A1", true, "\u00A1"},
    {"cent", "\u00A2", true, "\u00A2"},
    {"pound", "\u00A3", true, "\u00A3"},
    {"curren", "\u00A4", true, "\u00A4"},
    {"yen", "\u00A5", true, "\u00A5"},
    {"brvbar", "\u00A6", true, "\u00A6"},
    {"sect", "\u00A7", true, "\u00A7"},
    {"uml", "\u00A8", true, "\u00A8"},
    {"copy", "\u00A9", true, nullptr},
    {"ordf", "\u00AA", true, "\u00AA"},
    {"laquo", "\u00AB", true, "\u00AB"},
    {"not", "\u00AC", true, "\u00AC"},
    {"shy", "\u00AD", true, "\u00AD"},
    {"reg", "\u00AE", true, nullptr},
    {"macr", "\u00AF", true, "\u00AF"},
    {"deg", "\u00B0", true, "\u00B0"},
    {"plusmn", "\u00B1", true, "\u00B1"},
    {"sup2", "\u00B2", true, "\u00B2"},
    {"sup3", "\u00B3", true, "\u00B3"},
    {"acute", "\u00B4", true, "\u00B4"},
    {"micro", "\u00B5", true, "\u039C"},
    {"para", "\u00B6", true, "\u00B6"},
    {"middot", "\u00B7", true, "\u00B7"},
    {"cedil", "\u00B8", true, "\u00B8"},
    {"sup1", "\u00B9", true, "\u00B9"},
    {"ordm", "\u00BA", true, "\u00BA"},
    {"raquo", "\u00BB", true, "\u00BB"},
    {"frac14", "\u00BC", true, "\u00BC"},
    {"frac12", "\u00BD", true, "\u00BD"},
    {"frac34", "\u00BE", true, "\u00BE"},
    {"iquest", "\u00BF", true, "\u00BF"},
    {"Agrave", "\u00C0", true, nullptr},
    {"Aacute", "\u00C1", true, nullptr},
    {"Acirc", "\u00C2", true, nullptr},
    {"Atilde", "\u00C3", true, nullptr},
    {"Auml", "\u00C4", true, nullptr},
    {"Aring", "\u00C5", true, nullptr},
    {"AElig", "\u00C6", true, nullptr},
    {"Ccedil", "\u00C7", true, nullptr},
    {"Egrave", "\u00C8", true, nullptr},
    {"Eacute", "\u00C9", true, nullptr},
    {"Ecirc", "\u00CA", true, nullptr},
    {"Euml", "\u00CB", true, nullptr},
    {"Igrave", "\u00CC", true, nullptr},
    {"Iacute", "\u00CD", true, nullptr},
    {"Icirc", "\u00CE", true, nullptr},
    {"Iuml", "\u00CF", true, nullptr},
    {"ETH", "\u00D0", true, nullptr},
    {"Ntilde", "\u00D1", true, nullptr},
    {"Ograve", "\u00D2", true, nullptr},
    {"Oacute", "\u00D3", true, nullptr},
    {"Ocirc", "\u00D4", true, nullptr},
    {"Otilde", "\u00D5", true, nullptr},
    {"Ouml", "\u00D6", true, nullptr},
    {"times", "\u00D7", true, "\u00D7"},
    {"Oslash", "\u00D8", true, nullptr},
    {"Ugrave", "\u00D9", true, nullptr},
    {"Uacute", "\u00DA", true, nullptr},
    {"Ucirc", "\u00DB", true, nullptr},
    {"Uuml", "\u00DC", true, nullptr},
    {"Yacute", "\u00DD", true, nullptr},
    {"THORN", "\u00DE", true, nullptr},
    {"szlig", "\u00DF", true, "SS"},
    {"agrave", "\u00E0", true, "\u00C0"},
    {"aacute", "\u00E1", true, "\u00C1"},
    {"acirc", "\u00E2", true, "\u00C2"},
    {"atilde", "\u00E3", true, "\u00C3"},
    {"auml", "\u00E4", true, "\u00C4"},
    {"aring", "\u00E5", true, "\u00C5"},
    {"aelig", "\u00E6", true, "\u00C6"},
    {"ccedil", "\u00E7", true, "\u00C7"},
    {"egrave", "\u00E8", true, "\u00C8"},
    {"eacute", "\u00E9", true, "\u00C9"},
    {"ecirc", "\u00EA", true, "\u00CA"},
    {"euml", "\u00EB", true, "\u00CB"},
    {"igrave", "\u00EC", true, "\u00CC"},
    {"iacute", "\u00ED", true, "\u00CD"},
    {"icirc", "\u00EE", true, "\u00CE"},
    {"iuml", "\u00EF", true, "\u00CF"},
    {"eth", "\u00F0", true, nullptr},
    {"ntilde", "\u00F1", true, "\u00D1"},
    {"ograve", "\u00F2", true, "\u00D2"},
    {"oacute", "\u00F3", true, "\u00D3"},
    {"ocirc", "\u00F4", true, "\u00D4"},
    {"otilde", "\u00F5", true, "\u00D5"},
    {"ouml", "\u00F6", true, "\u00D6"},
    {"divide", "\u00F7", true, "\u00F7"},
    {"oslash", "\u00F8", true, "\u00D8"},
    {"ugrave", "\u00F9", true, "\u00D9"},
    {"uacute", "\u00FA", true, "\u00DA"},
    {"ucirc", "\u00FB", true, "\u00DB"},
    {"uuml", "\u00FC", true, "\u00DC"},
    {"yacute", "\u00FD", true, "\u00DD"},
    {"thorn", "\u00FE", true, nullptr},
    {"yuml", "\u00FF", true, "\u0178"},
    {"OElig", "\u0152", false, nullptr},
    {"oelig", "\u0153", false, "\u0152"},
    {"Scaron", "\u0160", false, nullptr},
    {"scaron", "\u0161", false, "\u0160"},
    {"Yuml", "\u0178", false, nullptr},
    {"fnof", "\u0192", false, "\u0191"},
    {"circ", "\u02C6", false, "\u02C6"},
    {"tilde", "\u02DC", false, "\u02DC"},
    {"ensp", "\u2002", false, "\u2002"},
    {"emsp", "\u2003", false, "\u2003"},
    {"thinsp", "\u2009", false, "\u2009"},
    {"zwnj", "\u200C", false, "\u200C"},
    {"zwj", "\u200D", false, "\u200D"},
    {"lrm", "\u200E", false, "\u200E"},
    {"rlm", "\u200F", false, "\u200F"},
    {"ndash", "\u2013", false, "\u2013"},
    {"mdash", "\u2014", false, "\u2014"},
    {"lsquo", "\u2018", false, "\u2018"},
    {"rsquo", "\u2019", false, "\u2019"},
    {"sbquo", "\u201A", false, "\u201A"},
    {"ldquo", "\u201C", false, "\u201C"},
    {"rdquo", "\u201D", false, "\u201D"},
    {"bdquo", "\u201E", false, "\u201E"},
    {"dagger", "\u2020", false, "\u2020"},
    {"Dagger", "\u2021", false, nullptr},
    {"bull", "\u2022", false, "\u2022"},
    {"hellip", "\u2026", false, "\u2026"},
    {"permil", "\u2030", false, "\u2030"},
    {"prime", "\u2032", false, "\u2032"},
    {"Prime", "\u2033", false, nullptr},
    {"lsaquo", "\u2039", false, "\u2039"},
    {"rsaquo", "\u203A", false, "\u203A"},
    {"oline", "\u203E", false, "\u203E"},
    {"frasl", "\u2044", false, "\u2044"},
    {"euro", "\u20AC", false, "\u20AC"},
    {"trade", "\u2122", false, nullptr},
    {"larr", "\u2190", false, "\u2190"},
    {"uarr", "\u2191", false, "\u2191"},
    {"rarr", "\u2192", false, "\u2192"},
    {"darr", "\u2193", false, "\u2193"},
    {"harr", "\u2194", false, "\u2194"},
    {"minus", "\u2212", false, "\u2212"},
    {"lowast", "\u2217", false, "\u2217"},
    {"le", "\u2264", false, "\u2264"},
    {"ge", "\u2265", false, "\u2265"},
    {"ne", "\u2260", false, "\u2260"},
    {"asymp", "\u2248", false, "\u2248"},
    {"infin", "\u221E", false, "\u221E"},
    {"sum", "\u2211", false, "\u2211"},
    {"prod", "\u220F", false, "\u220F"},
    {"radic", "\u221A", false, "\u221A"},
    {"hearts", "\u2665", false, "\u2665"},
    {"spades", "\u2660", false, "\u2660"},
    {"clubs", "\u2663", false, "\u2663"},
    {"diams", "\u2666", false, "\u2666"},
    {"loz", "\u25CA", false, "\u25CA"},
    {"check", "\u2713", false, "\u2713"},
    {"cross", "\u2717", false, "\u2717"},
    {"star", "\u2606", false, "\u2606"},
    {"starf", "\u2605", false, "\u2605"},
    {"notin", "\u2209", false, "\u2209"},
    {"AMP", "&", true, nullptr},
    {"LT", "<", true, nullptr},
    {"GT", ">", true, nullptr},
    {"QUOT", "\"", true, nullptr},
    {"COPY", "\u00A9", true, nullptr},
    {"REG", "\u00AE", true, nullptr},
};

struct Tables {
  std::unordered_map<std::string, std::u32string> html5;  // "name;" and legacy "name"
  std::unordered_map<std::string, std::u32string> ftfy;   // "&name;" and ftfy's "&NAME;"
};

std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

std::string wrap(std::string_view before, std::string_view name, std::string_view after) {
  std::string s;
  s.reserve(before.size() + name.size() + after.size());
  s.append(before).append(name).append(after);
  return s;
}

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    for (const Entity& e : kEntities) {
      const std::u32string v = utf8_decode(e.value, "entity table");
      t.html5[wrap("", e.name, ";")] = v;
      if (e.legacy) t.html5[e.name] = v;
      t.ftfy[wrap("&", e.name, ";")] = v;
    }
    for (const Entity& e : kEntities)
      if (e.upper) t.ftfy.emplace(wrap("&", ascii_upper(e.name), ";"), utf8_decode(e.upper, "entity table"));
    return t;
  }();
  return t;
}

// Python's html._invalid_codepoints: references to these decode to nothing.
bool invalid_codepoint(uint64_t n) {
  return (n >= 0x1 && n <= 0x8) || n == 0xB || (n >= 0xE && n <= 0x1F) || (n >= 0x7F && n <= 0x9F) ||
         (n >= 0xFDD0 && n <= 0xFDEF) || (n <= 0x10FFFF && (n & 0xFFFE) == 0xFFFE);
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_hex(char32_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char32_t c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int hex_value(char32_t c) { return is_digit(c) ? int(c - '0') : (c >= 'a' ? int(c - 'a' + 10) : int(c - 'A' + 10)); }

// Python's html._replace_charref for a numeric reference whose digits are s[begin, end).
std::u32string numeric_reference(std::u32string_view s, size_t begin, size_t end, int base) {
  uint64_t n = 0;
  for (size_t i = begin; i < end; ++i) {
    n = n * uint64_t(base) + uint64_t(hex_value(s[i]));
    if (n > 0x10FFFF) n = 0x110000;  // saturate: anything past U+10FFFF decodes the same way
  }
  if (n == 0) return U"\uFFFD";
  if (n == 0x0D) return U"\r";
  if (n >= 0x80 && n <= 0x9F) return std::u32string(1, windows1252(char32_t(n)));
  if ((n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) return U"\uFFFD";
  if (invalid_codepoint(n)) return U"";
  return std::u32string(1, char32_t(n));
}

std::string ascii_name(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) {
    if (c >= 0x80) return {};  // no entity name has non-ASCII characters
    out.push_back(char(c));
  }
  return out;
}

}  // namespace

char32_t windows1252(char32_t c) {
  // Windows-1252 for 0x80..0x9F; the five undefined bytes map to themselves ("sloppy").
  static constexpr char32_t kTable[32] = {
      0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  return (c >= 0x80 && c <= 0x9F) ? kTable[c - 0x80] : c;
}

std::u32string html_unescape(std::u32string_view s) {
  const Tables& t = tables();
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t start = i + 1;
    // &#digits;?  and  &#xhex;?
    if (start < s.size() && s[start] == '#') {
      size_t p = start + 1;
      int base = 10;
      if (p < s.size() && (s[p] == 'x' || s[p] == 'X') && p + 1 < s.size() && is_hex(s[p + 1])) base = 16, ++p;
      size_t q = p;
      while (q < s.size() && (base == 16 ? is_hex(s[q]) : is_digit(s[q]))) ++q;
      if (q > p) {
        out += numeric_reference(s, p, q, base);
        i = (q < s.size() && s[q] == ';') ? q + 1 : q;
        continue;
      }
      out.push_back(s[i++]);  // "&#" with no digits: not a reference
      continue;
    }
    // Named: [^\t\n\f <&#;]{1,32};?
    size_t q = start;
    while (q < s.size() && q - start < 32) {
      const char32_t c = s[q];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
      ++q;
    }
    if (q == start) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = q < s.size() && s[q] == ';';
    const size_t end = semicolon ? q + 1 : q;
    const std::u32string_view name = s.substr(start, end - start);
    const std::string key = ascii_name(name);
    if (auto it = t.html5.find(key); !key.empty() && it != t.html5.end()) {
      out += it->second;
      i = end;
      continue;
    }
    // The longest prefix (at least 2 characters) that is a legacy name, then the rest verbatim.
    bool found = false;
    for (size_t x = name.size() - 1; x >= 2 && x < name.size(); --x) {
      const std::string prefix = ascii_name(name.substr(0, x));
      if (prefix.empty()) continue;
      if (auto it = t.html5.find(prefix); it != t.html5.end()) {
        out += it->second;
        out += name.substr(x);
        found = true;
        break;
      }
    }
    if (!found) {
      out.push_back('&');
      out += name;
    }
    i = end;
  }
  return out;
}

std::u32string ftfy_unescape_html(std::u32string_view s) {
  const Tables& t = tables();
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // &#?[0-9A-Za-z]{1,24};
    if (s[i] == '&') {
      size_t p = i + 1;
      if (p < s.size() && s[p] == '#') ++p;
      size_t q = p;
      while (q < s.size() && is_alnum(s[q]) && q - p < 24) ++q;
      if (q > p && q < s.size() && s[q] == ';') {
        const std::u32string_view match = s.substr(i, q + 1 - i);
        const std::string key = ascii_name(match);
        if (auto it = t.ftfy.find(key); it != t.ftfy.end()) {
          out += it->second;
        } else if (p == i + 2) {  // "&#...;": keep it unless html.unescape consumes it whole
          const std::u32string u = html_unescape(match);
          out += u.find(U';') == std::u32string::npos ? u : std::u32string(match);
        } else {
          out += match;
        }
        i = q + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

}  // namespace reel::text
