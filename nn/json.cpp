// JSON reader and writer (RFC 8259). The parser is a recursive descent over
// the text with a depth limit; numbers go through std::from_chars (exact,
// locale-free) and are written back with std::to_chars (shortest round trip).
#include "nn/json.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "runtime/error.hpp"

namespace recon::nn {

// ---- construction and access ---------------------------------------------------------

Json::Json(double v) : type_(Type::Number), num_(v) {}

Json::Json(uint64_t v) : type_(Type::Number), num_((double)v), int_((int64_t)v), is_int_(true) {
  RECON_CHECK(v <= (uint64_t)std::numeric_limits<int64_t>::max(), "Json: " << v << " does not fit in int64");
}

Json Json::array(Array items) {
  Json j;
  j.type_ = Type::Array;
  j.arr_ = std::move(items);
  return j;
}

Json Json::object(Object members) {
  Json j;
  j.type_ = Type::Object;
  j.obj_ = std::move(members);
  return j;
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Bool: return "bool";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

bool Json::as_bool() const {
  RECON_CHECK(is_bool(), "Json: expected a bool, got " << type_name());
  return bool_;
}

double Json::as_number() const {
  RECON_CHECK(is_number(), "Json: expected a number, got " << type_name());
  return num_;
}

int64_t Json::as_int() const {
  RECON_CHECK(is_integer(), "Json: expected an integer, got " << (is_number() ? "a non-integer number" : type_name()));
  return int_;
}

const std::string& Json::as_string() const {
  RECON_CHECK(is_string(), "Json: expected a string, got " << type_name());
  return str_;
}

const Json::Array& Json::as_array() const {
  RECON_CHECK(is_array(), "Json: expected an array, got " << type_name());
  return arr_;
}

Json::Array& Json::as_array() {
  RECON_CHECK(is_array(), "Json: expected an array, got " << type_name());
  return arr_;
}

const Json::Object& Json::as_object() const {
  RECON_CHECK(is_object(), "Json: expected an object, got " << type_name());
  return obj_;
}

Json::Object& Json::as_object() {
  RECON_CHECK(is_object(), "Json: expected an object, got " << type_name());
  return obj_;
}

const Json* Json::find(std::string_view key) const {
  for (const auto& [k, v] : as_object())
    if (k == key) return &v;
  return nullptr;
}

const Json& Json::at(std::string_view key) const {
  const Json* v = find(key);
  RECON_CHECK(v != nullptr, "Json: no key \"" << key << "\" in the object");
  return *v;
}

Json& Json::set(std::string key, Json value) {
  for (auto& [k, v] : as_object())
    if (k == key) return v = std::move(value);
  obj_.emplace_back(std::move(key), std::move(value));
  return obj_.back().second;
}

Json& Json::push_back(Json value) {
  as_array().push_back(std::move(value));
  return arr_.back();
}

size_t Json::size() const {
  if (is_array()) return arr_.size();
  if (is_object()) return obj_.size();
  RECON_FAIL("Json: size() of a " << type_name());
}

bool Json::operator==(const Json& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::Null: return true;
    case Type::Bool: return bool_ == o.bool_;
    case Type::Number: return is_int_ && o.is_int_ ? int_ == o.int_ : num_ == o.num_;
    case Type::String: return str_ == o.str_;
    case Type::Array: return arr_ == o.arr_;
    case Type::Object: return obj_ == o.obj_;
  }
  return false;
}

// ---- parser ----------------------------------------------------------------------------

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  // Nesting deeper than this is refused instead of overflowing the stack.
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    RECON_FAIL("invalid JSON at line " << line << ", column " << col << ": " << what);
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void expect(char c, const char* context) {
    if (pos_ >= s_.size()) fail(std::string("unexpected end of text, expected '") + c + "' " + context);
    if (s_[pos_] != c) fail(std::string("expected '") + c + "' " + context + ", found '" + s_[pos_] + "'");
    ++pos_;
  }

  void literal(const char* word) {
    std::string_view w(word);
    if (s_.substr(pos_, w.size()) != w) fail("unknown literal (expected a value)");
    pos_ += w.size();
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 256 levels");
    if (pos_ >= s_.size()) fail("unexpected end of text, expected a value");
    char c = s_[pos_];
    switch (c) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Json(parse_string());
      case 't': literal("true"); return Json(true);
      case 'f': literal("false"); return Json(false);
      case 'n': literal("null"); return Json();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail(std::string("unexpected character '") + c + "', expected a value");
    }
  }

  Json parse_object(int depth) {
    expect('{', "to open an object");
    Json obj = Json::object();
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return obj;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size()) fail("unexpected end of text inside an object");
      if (peek() != '"') fail("expected a string key in the object");
      size_t key_pos = pos_;
      std::string key = parse_string();
      for (const auto& kv : obj.obj_)
        if (kv.first == key) {
          pos_ = key_pos;
          fail("duplicate key \"" + key + "\"");
        }
      skip_ws();
      expect(':', "after an object key");
      skip_ws();
      Json value = parse_value(depth + 1);
      obj.obj_.emplace_back(std::move(key), std::move(value));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}', "or ',' in an object");
      return obj;
    }
  }

  Json parse_array(int depth) {
    expect('[', "to open an array");
    Json arr = Json::array();
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return arr;
    }
    for (;;) {
      skip_ws();
      arr.arr_.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']', "or ',' in an array");
      return arr;
    }
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
      else fail("bad hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    expect('"', "to open a string");
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if ((unsigned char)c < 0x20) {
        --pos_;
        fail("control character in a string (must be escaped)");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape in a string");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate needs its low half
            if (s_.substr(pos_, 2) != "\\u") fail("unpaired UTF-16 surrogate in a \\u escape");
            pos_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired UTF-16 surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired UTF-16 surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: --pos_; fail(std::string("unknown escape '\\") + e + "' in a string");
      }
    }
  }

  Json parse_number() {
    // Validate the RFC 8259 grammar first: from_chars alone accepts forms
    // JSON forbids (leading zeros, "1.", ".5").
    size_t start = pos_;
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("a number needs a digit after '-'");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("a number needs digits after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("a number needs digits in its exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + pos_;
    if (integral) {
      int64_t v = 0;
      auto r = std::from_chars(b, e, v);
      if (r.ec == std::errc() && r.ptr == e) return Json(v);
      // Out of int64 range: keep it as a double.
    }
    double d = 0;
    auto r = std::from_chars(b, e, d);
    if (r.ec == std::errc::result_out_of_range) {
      pos_ = start;
      fail("number out of range");
    }
    if (r.ec != std::errc() || r.ptr != e) {
      pos_ = start;
      fail("malformed number");
    }
    return Json(d);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Json Json::parse(std::string_view text) { return JsonParser(text).parse_document(); }

// ---- writer -----------------------------------------------------------------------------

static void write_string(std::string& out, const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = (unsigned char)ch;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;  // UTF-8 passes through unchanged
        }
    }
  }
  out += '"';
}

static void newline(std::string& out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append((size_t)(indent * level), ' ');
}

static void write_value(std::string& out, const Json& v, int indent, int level) {
  switch (v.type()) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Json::Type::Number: {
      char buf[32];
      std::to_chars_result r;
      if (v.is_integer()) {
        r = std::to_chars(buf, buf + sizeof buf, v.as_int());
      } else {
        double d = v.as_number();
        RECON_CHECK(std::isfinite(d), "Json::dump: " << d << " cannot be written as JSON (only finite numbers)");
        r = std::to_chars(buf, buf + sizeof buf, d);
      }
      out.append(buf, r.ptr);
      break;
    }
    case Json::Type::String: write_string(out, v.as_string()); break;
    case Json::Type::Array: {
      const auto& a = v.as_array();
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, level + 1);
        write_value(out, a[i], indent, level + 1);
      }
      if (!a.empty()) newline(out, indent, level);
      out += ']';
      break;
    }
    case Json::Type::Object: {
      const auto& o = v.as_object();
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, level + 1);
        write_string(out, o[i].first);
        out += indent < 0 ? ":" : ": ";
        write_value(out, o[i].second, indent, level + 1);
      }
      if (!o.empty()) newline(out, indent, level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  write_value(out, *this, indent, 0);
  return out;
}

}  // namespace recon::nn
