// nn/json, nn/safetensors and nn/checkpoint: the JSON reader/writer, a
// safetensors round trip, fixtures written by an independent writer
// (bench/reference/safetensors_fixture.py), a file exported for that script's
// --check, every kind of malformed file, and checkpoints of StateDicts.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <unistd.h>

#include "nn/checkpoint.hpp"
#include "nn/json.hpp"
#include "nn/safetensors.hpp"
#include "runtime/error.hpp"

using namespace recon;
using namespace recon::nn;
namespace fs = std::filesystem;

namespace {

// A fresh, empty directory under the system temp dir for one test.
fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("reconad_test_nn_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string fixture(const std::string& name) { return std::string(RECON_SOURCE_DIR) + "/tests/fixtures/" + name; }

std::vector<float> iota(int n, float scale, float shift) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = (float)i * scale + shift;
  return v;
}

// A header + data blob built by hand, for malformed-file tests.
std::string raw_file(const std::string& header, const std::string& data, int64_t header_len = -1) {
  uint64_t n = header_len < 0 ? header.size() : (uint64_t)header_len;
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

}  // namespace

// ---- JSON ---------------------------------------------------------------------------------------

TEST_CASE("json: parses every value kind and keeps key order") {
  Json j = Json::parse(R"( {"b": 1, "a": [true, false, null, -0.5, 1e3, "x"], "c": {"d": {}} , "e": []} )");
  REQUIRE(j.is_object());
  CHECK(j.size() == 4);
  CHECK(j.as_object()[0].first == "b");
  CHECK(j.as_object()[1].first == "a");
  CHECK(j.at("b").as_int() == 1);
  const auto& a = j.at("a").as_array();
  REQUIRE(a.size() == 6);
  CHECK(a[0].as_bool() == true);
  CHECK(a[1].as_bool() == false);
  CHECK(a[2].is_null());
  CHECK(a[3].as_number() == -0.5);
  CHECK_FALSE(a[3].is_integer());
  CHECK(a[4].as_number() == 1000.0);
  CHECK_FALSE(a[4].is_integer());  // written with an exponent
  CHECK(a[5].as_string() == "x");
  CHECK(j.at("c").at("d").is_object());
  CHECK(j.at("e").size() == 0);
  CHECK(j.find("zz") == nullptr);
  CHECK_THROWS_WITH_AS(j.at("zz"), doctest::Contains("no key \"zz\""), Error);
  CHECK_THROWS_WITH_AS(j.at("b").as_string(), doctest::Contains("expected a string, got number"), Error);
}

TEST_CASE("json: integers are exact beyond 2^53; doubles round-trip") {
  Json j = Json::parse("[9007199254740993, -9223372036854775808, 18446744073709551616, 0.1, 2.5e-310]");
  CHECK(j.as_array()[0].as_int() == 9007199254740993LL);  // 2^53 + 1: not a double
  CHECK(j.as_array()[1].as_int() == std::numeric_limits<int64_t>::min());
  CHECK_FALSE(j.as_array()[2].is_integer());  // past int64: kept as a double
  CHECK(j.as_array()[2].as_number() == 18446744073709551616.0);
  CHECK(j.as_array()[3].as_number() == 0.1);
  CHECK(j.as_array()[4].as_number() == 2.5e-310);  // subnormal
  Json back = Json::parse(j.dump());
  CHECK(back == j);
  CHECK(Json(0.1).dump() == "0.1");
  CHECK(Json(int64_t(-42)).dump() == "-42");
  CHECK_THROWS_WITH_AS(Json(std::nan("")).dump(), doctest::Contains("only finite numbers"), Error);
}

TEST_CASE("json: string escapes, unicode and surrogate pairs") {
  Json j = Json::parse(R"("q\" b\\ s\/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00")");
  CHECK(j.as_string() == "q\" b\\ s/ \b\f\n\r\t \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // Writing escapes what JSON requires and passes UTF-8 through.
  Json s(std::string("a\"b\\c\n\x01\xC3\xA9"));
  CHECK(s.dump() == "\"a\\\"b\\\\c\\n\\u0001\xC3\xA9\"");
  CHECK(Json::parse(s.dump()) == s);
}

TEST_CASE("json: writer output, compact and indented, parses back") {
  Json cfg = Json::object();
  cfg.set("lr", 0.001);
  cfg.set("epochs", 3);
  cfg.set("layers", Json::array({1, 2}));
  cfg.set("empty", Json::object());
  cfg.set("name", "ae");
  CHECK(cfg.dump() == R"({"lr":0.001,"epochs":3,"layers":[1,2],"empty":{},"name":"ae"})");
  CHECK(cfg.dump(2) == "{\n  \"lr\": 0.001,\n  \"epochs\": 3,\n  \"layers\": [\n    1,\n    2\n  ],\n"
                       "  \"empty\": {},\n  \"name\": \"ae\"\n}");
  CHECK(Json::parse(cfg.dump(2)) == cfg);
  cfg.set("epochs", 5);  // replaces in place
  CHECK(cfg.size() == 5);
  CHECK(cfg.at("epochs").as_int() == 5);
}

TEST_CASE("json: malformed text is rejected with its position and reason") {
  struct Bad {
    const char* text;
    const char* why;
  };
  const Bad cases[] = {
      {"", "unexpected end of text"},
      {"[1, 2,]", "unexpected character ']'"},
      {"{\"a\": 1,}", "expected a string key"},
      {"{\"a\" 1}", "expected ':'"},
      {"[1 2]", "or ',' in an array"},
      {"01", "unexpected text after the JSON value"},
      {"1.", "digits after '.'"},
      {"-", "digit after '-'"},
      {"1e", "digits in its exponent"},
      {"1e999", "out of range"},
      {"\"abc", "unterminated string"},
      {"\"a\nb\"", "control character"},
      {"\"\\x\"", "unknown escape"},
      {"\"\\u12g4\"", "bad hex digit"},
      {"\"\\ud800x\"", "unpaired UTF-16 surrogate"},
      {"tru", "unknown literal"},
      {"{\"k\": 1, \"k\": 2}", "duplicate key \"k\""},
      {"[1] x", "unexpected text after"},
      {"{\"a\": 1,", "unexpected end of text inside an object"},
      {"[1,", "unexpected end of text, expected a value"},
  };
  for (const Bad& b : cases) {
    INFO("text: " << b.text);
    CHECK_THROWS_WITH_AS(Json::parse(b.text), doctest::Contains(b.why), Error);
  }
  CHECK_THROWS_WITH_AS(Json::parse("[\n  1,\n  x]"), doctest::Contains("line 3, column 3"), Error);
  std::string deep(300, '[');
  CHECK_THROWS_WITH_AS(Json::parse(deep), doctest::Contains("nesting deeper than 256"), Error);
}

// ---- safetensors ------------------------------------------------------------------------------

TEST_CASE("safetensors: round trip keeps names, order, shapes, values and metadata") {
  fs::path dir = temp_dir("roundtrip");
  StateDict sd;
  sd.insert("encoder.0.weight", Tensor::from_vector(iota(24, 0.37f, -4.f), {2, 3, 2, 2}));
  sd.insert("encoder.0.bias", Tensor::from_vector({1e-30f, -0.f, 3.4e38f}, {3}));
  sd.insert("a_scalar", Tensor::scalar(-7.5f));
  sd.insert("empty", Tensor::zeros({0, 5}));
  const Metadata meta{{"config", "{\"lr\": 1}"}, {"who", "t\u00e9st \"quoted\"\n"}};
  const std::string path = (dir / "rt.safetensors").string();
  save_safetensors(path, sd, meta);
  CHECK_FALSE(fs::exists(path + ".tmp"));  // renamed over the target

  // Layout: the data start is 8-byte aligned and the file is exactly header + data.
  std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  CHECK(bytes.size() == 8 + n + (24 + 3 + 1) * 4);
  CHECK(bytes[8] == '{');

  SafetensorsContents back = load_safetensors(path);
  CHECK(back.metadata == meta);
  REQUIRE(back.tensors.names() == sd.names());
  for (const auto& [name, t] : sd) {
    INFO(name);
    const Tensor& b = back.tensors.at(name);
    CHECK(b.shape() == t.shape());
    std::vector<float> x = t.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) CHECK(std::bit_cast<uint32_t>(x[i]) == std::bit_cast<uint32_t>(y[i]));
  }
  // Saving again replaces the file atomically.
  StateDict other;
  other.insert("only", Tensor::ones({2}));
  save_safetensors(path, other);
  SafetensorsContents again = load_safetensors(path);
  CHECK(again.tensors.names() == std::vector<std::string>{"only"});
  CHECK(again.metadata.empty());
  fs::remove_all(dir);
}

TEST_CASE("safetensors: writer rejects a tensor named __metadata__") {
  StateDict sd;
  sd.insert("__metadata__", Tensor::ones({1}));
  CHECK_THROWS_WITH_AS(encode_safetensors(sd), doctest::Contains("\"__metadata__\" is reserved"), Error);
}

TEST_CASE("safetensors: F32 fixture from the independent writer loads with the right values") {
  SafetensorsContents f = load_safetensors(fixture("reference_f32.safetensors"));
  // Ordered by data offset (the writer laid the data out in reverse name order).
  CHECK(f.tensors.names() == std::vector<std::string>{"scalar", "empty", "conv.weight", "conv.bias"});
  CHECK(f.tensors.at("conv.weight").shape() == Shape{2, 1, 2, 2});
  CHECK(f.tensors.at("conv.weight").to_vector() == iota(8, 0.25f, -1.f));
  CHECK(f.tensors.at("conv.bias").to_vector() == std::vector<float>{0.5f, -0.5f});
  CHECK(f.tensors.at("scalar").dim() == 0);
  CHECK(f.tensors.at("scalar").item() == 3.25f);
  CHECK(f.tensors.at("empty").shape() == Shape{0, 3});
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("note") == "written by safetensors_fixture.py \xC3\xA9\"\\");
}

TEST_CASE("safetensors: F16, BF16 and F64 fixture converts to float32") {
  SafetensorsContents f = load_safetensors(fixture("reference_mixed.safetensors"));
  std::vector<float> half = f.tensors.at("half").to_vector();
  REQUIRE(half.size() == 6);
  CHECK(half[0] == 1.f);
  CHECK(half[1] == -2.5f);
  CHECK(half[2] == std::ldexp(1.f, -14));  // smallest normal
  CHECK(half[3] == std::ldexp(1.f, -24));  // smallest subnormal
  CHECK(half[4] == 65504.f);               // largest finite
  CHECK(half[5] == 0.f);
  CHECK(std::signbit(half[5]));
  CHECK(f.tensors.at("double").shape() == Shape{2, 2});
  CHECK(f.tensors.at("double").to_vector() == std::vector<float>{0.1f, -1e-3f, 12345.678f, 0.f});
  CHECK(f.tensors.at("brain").to_vector() == std::vector<float>{1.f, -3.f, 0.15625f, std::ldexp(1.f, 100)});
}

TEST_CASE("safetensors: exported checkpoint for the independent checker") {
  // tests/CMakeLists.txt runs `safetensors_fixture.py --check` on this file
  // after this suite; the values match expected_export() there.
  StateDict model, optim;
  Tensor w = Tensor::from_vector(iota(6, 0.25f, -0.625f), {3, 2});  // (i - 2.5) / 4
  model.insert("fc.weight", w);
  model.insert("fc.bias", Tensor::from_vector({0.1f, 0.2f, 0.3f}, {3}));
  model.insert("empty", Tensor::zeros({0, 4}));
  optim.insert("step", Tensor::scalar(7.f));
  optim.insert("fc.weight.exp_avg", Tensor::from_vector(iota(6, -0.25f, 0.625f), {3, 2}));
  Json cfg = Json::object();
  cfg.set("lr", 0.001);
  cfg.set("name", "t\u00e9st \"q\"");
  cfg.set("layers", Json::array({1, 2, 3}));
  cfg.set("flag", true);
  cfg.set("none", Json());
  const char* env = std::getenv("RECON_NN_EXPORT");
  fs::path dir = temp_dir("export");
  std::string path = env ? std::string(env) : (dir / "export.safetensors").string();
  save_checkpoint(path, model, optim, "Adam", cfg);
  Checkpoint ck = read_checkpoint(path);
  CHECK(ck.model.names() == model.names());
  CHECK(ck.optimizer.names() == optim.names());
  CHECK(ck.optimizer_type == "Adam");
  CHECK(ck.config == cfg);
  CHECK(ck.metadata.at("format") == kCheckpointFormat);
  CHECK(ck.model.at("fc.weight").to_vector() == w.to_vector());
  fs::remove_all(dir);
}

TEST_CASE("safetensors: every kind of malformed file is rejected with a clear message") {
  StateDict sd;
  sd.insert("w", Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
  sd.insert("b", Tensor::from_vector({5, 6}, {2}));
  const std::string good = encode_safetensors(sd);
  REQUIRE(decode_safetensors(good, "good").tensors.size() == 2);
  const std::string w16 = R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  const std::string data(24, '\0');

  struct Bad {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const std::vector<Bad> cases = {
      {"shorter than the length field", good.substr(0, 5), "truncated file: 5 bytes"},
      {"header length past the end", raw_file("{}", "", 1000), "header length 1000 runs past the end of the file (10 bytes)"},
      {"truncated inside the header", good.substr(0, 20), "runs past the end of the file (20 bytes)"},
      {"truncated inside the data", good.substr(0, good.size() - 4), "run past the end of the data (20 bytes): truncated"},
      {"invalid JSON", raw_file("{\"w\": {\"dtype\": \"F32\",", data), "header is not valid JSON"},
      {"header not an object", raw_file("[1, 2]", data), "header must be a JSON object, got array"},
      {"offsets past the end", raw_file("{" + w16 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[16,32]}})", data),
       "tensor \"b\": data_offsets [16,32] run past the end of the data (24 bytes)"},
      {"overlapping ranges", raw_file("{" + w16 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data),
       "tensors \"w\" [0, 16) and \"b\" [8, 16) overlap"},
      {"unknown dtype", raw_file(R"({"w":{"dtype":"F31","shape":[2,2],"data_offsets":[0,16]}})", data),
       "tensor \"w\": unknown dtype \"F31\""},
      {"known but unsupported dtype", raw_file(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data),
       "dtype I64 is not supported"},
      {"shape does not match the byte count", raw_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", data),
       "tensor \"w\": shape [2,3] of F32 needs 24 bytes, but data_offsets [0,16] hold 16"},
      {"negative shape", raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}})", data),
       "shape entries must be non-negative integers, got -1"},
      {"fractional shape", raw_file(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}})", data),
       "shape entries must be non-negative integers, got 1.5"},
      {"reversed offsets", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[16,8]}})", data),
       "must be integers with 0 <= begin <= end"},
      {"missing data_offsets", raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", data),
       "\"data_offsets\" must be an array [begin, end]"},
      {"missing dtype", raw_file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data), "missing or non-string \"dtype\""},
      {"missing shape", raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data), "missing or non-array \"shape\""},
      {"entry not an object", raw_file(R"({"w":3})", data), "tensor \"w\": entry must be an object, got number"},
      {"metadata value not a string", raw_file(R"({"__metadata__":{"epoch":3}})", data),
       "\"__metadata__\" value \"epoch\" must be a string, got number"},
      {"metadata not an object", raw_file(R"({"__metadata__":"x"})", data), "\"__metadata__\" must be an object"},
      {"shape overflows", raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data),
       "overflows"},
  };
  for (const Bad& b : cases) {
    INFO("case: " << b.what);
    CHECK_THROWS_WITH_AS(decode_safetensors(b.bytes, "bad.safetensors"), doctest::Contains(b.message), Error);
    CHECK_THROWS_WITH_AS(decode_safetensors(b.bytes, "bad.safetensors"),
                         doctest::Contains("safetensors: bad.safetensors: "), Error);
  }
}

TEST_CASE("safetensors: a bad file on disk is named in the error; a missing file too") {
  fs::path dir = temp_dir("badfile");
  const std::string path = (dir / "cut.safetensors").string();
  StateDict sd;
  sd.insert("w", Tensor::ones({4}));
  std::string bytes = encode_safetensors(sd);
  write_file_atomic(path, bytes.substr(0, bytes.size() - 1));
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(("safetensors: " + path + ": tensor \"w\"").c_str()), Error);
  CHECK_THROWS_WITH_AS(load_safetensors((dir / "nope.safetensors").string()), doctest::Contains("cannot open"), Error);
  fs::remove_all(dir);
}

// ---- checkpoints ------------------------------------------------------------------------------

TEST_CASE("checkpoint: StateDicts, optimizer type and config round trip; bad checkpoints are named") {
  fs::path dir = temp_dir("ckpt");
  const std::string path = (dir / "ck.safetensors").string();
  StateDict model;
  model.insert("w", Tensor::from_vector({1, 2}, {2}));
  save_checkpoint(path, model);
  Checkpoint ck = read_checkpoint(path);
  CHECK(ck.model.names() == std::vector<std::string>{"w"});
  CHECK(ck.optimizer.empty());
  CHECK(ck.optimizer_type.empty());
  CHECK(ck.config.is_null());

  // A plain safetensors file is not a checkpoint.
  save_safetensors(path, model);
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains("not a ReconAD checkpoint (metadata \"format\" is missing"),
                       Error);
  // Tensors outside the two prefixes are refused.
  save_safetensors(path, model, {{"format", kCheckpointFormat}});
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains("tensor \"w\" is neither \"model.<name>\" nor \"optimizer.<name>\""), Error);
  // A config that is not JSON.
  StateDict prefixed;
  prefixed.insert("model.w", Tensor::ones({2}));
  save_safetensors(path, prefixed, {{"format", kCheckpointFormat}, {"config", "{oops"}});
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains("metadata \"config\" is not valid JSON"), Error);
  // Reserved metadata keys and state without a type.
  CHECK_THROWS_WITH_AS(save_checkpoint(path, model, {}, "", Json(), {{"config", "x"}}),
                       doctest::Contains("metadata key \"config\" is reserved"), Error);
  CHECK_THROWS_WITH_AS(save_checkpoint(path, model, model, ""), doctest::Contains("without its optimizer type"), Error);
  fs::remove_all(dir);
}

TEST_CASE("state dict: check names every missing, unexpected and wrong-shape tensor") {
  StateDict want, got;
  want.insert("a", Tensor::zeros({2}));
  want.insert("b", Tensor::zeros({3, 4}));
  want.insert("c", Tensor::zeros({1}));
  got.insert("b", Tensor::zeros({4, 3}));
  got.insert("c", Tensor::zeros({1}));
  got.insert("z", Tensor::zeros({1}));
  CHECK_THROWS_WITH_AS(check_state_dict("load", want, got),
                       doctest::Contains("load: state does not match; missing (1): a; unexpected (1): z; wrong shape "
                                         "(1): b (expected (3, 4), got (4, 3))"),
                       Error);
  // Not strict: unexpected names pass, missing ones still fail.
  StateDict extra = got;
  extra.set("b", Tensor::zeros({3, 4}));
  extra.insert("a", Tensor::zeros({2}));
  CHECK_NOTHROW(check_state_dict("load", want, extra, false));
  CHECK_THROWS_AS(check_state_dict("load", want, extra, true), Error);
  CHECK_THROWS_WITH_AS(want.insert("a", Tensor::zeros({1})), doctest::Contains("duplicate name \"a\""), Error);
}
