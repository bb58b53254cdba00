// A small JSON value with a reader and a writer (RFC 8259): enough for
// safetensors headers and run configurations. Objects keep their keys in
// insertion order (so written files read the way they were built) and reject
// duplicate keys when parsed; integers without a fraction or exponent are kept
// exactly as int64 beside their double value (safetensors offsets).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recon::nn {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(int v) : Json((int64_t)v) {}
  Json(int64_t v) : type_(Type::Number), num_((double)v), int_(v), is_int_(true) {}
  Json(uint64_t v);  // must fit in int64
  Json(double v);
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Json(std::string_view s) : type_(Type::String), str_(s) {}
  static Json array(Array items = {});
  static Json object(Object members = {});

  // Parses one JSON text (surrounding whitespace allowed). Throws recon::Error
  // naming the line, column and what was expected.
  static Json parse(std::string_view text);
  // Compact when indent < 0, else pretty-printed with `indent` spaces.
  std::string dump(int indent = -1) const;

  Type type() const { return type_; }
  const char* type_name() const;
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_integer() const { return type_ == Type::Number && is_int_; }  // written without fraction/exponent
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; each throws recon::Error naming the actual type.
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // an integer literal within int64
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Objects: lookup (nullptr if absent), checked lookup, insert-or-assign.
  const Json* find(std::string_view key) const;
  const Json& at(std::string_view key) const;
  Json& set(std::string key, Json value);
  // Arrays: append.
  Json& push_back(Json value);
  size_t size() const;  // elements of an array or members of an object

  bool operator==(const Json& o) const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  bool is_int_ = false;
  std::string str_;
  Array arr_;
  Object obj_;
  friend class JsonParser;
};

}  // namespace recon::nn
