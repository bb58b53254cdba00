// safetensors encoding and decoding, with the validation a reader owes a file
// that may be truncated or hand-edited: header bounds, JSON, dtypes, shapes
// against byte counts, offsets against the data, overlapping ranges.
#include "nn/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/json.hpp"
#include "runtime/autograd.hpp"
#include "runtime/error.hpp"

namespace recon::nn {

// The data are copied byte for byte from float arrays.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// Header sizes above this are refused before allocating (the limit the
// reference implementation uses, 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kAlign = 8;  // data start alignment the format recommends

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    float v = std::ldexp((float)mant, -24);
    return sign ? -v : v;
  }
  uint32_t bits = exp == 0x1F ? sign | 0x7F800000u | (mant << 13)          // inf / nan
                              : sign | ((exp + 127 - 15) << 23) | (mant << 13);
  return std::bit_cast<float>(bits);
}

// zlib's CRC-32 of `bytes`, in pieces that fit its uInt lengths.
uint32_t crc32_of(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  size_t left = bytes.size();
  constexpr size_t kPiece = 1u << 30;
  while (left > 0) {
    const size_t n = std::min(left, kPiece);
    crc = crc32(crc, p, (uInt)n);
    p += n;
    left -= n;
  }
  return (uint32_t)crc;
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

float bf16_to_float(uint16_t h) { return std::bit_cast<float>((uint32_t)h << 16); }

struct DTypeInfo {
  const char* name;
  size_t size;
  bool supported;
};

// Every dtype of the published format; only the floating ones are read.
constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, true},      {"F16", 2, true},     {"BF16", 2, true},     {"F64", 8, true},
    {"BOOL", 1, false},    {"U8", 1, false},     {"I8", 1, false},      {"I16", 2, false},
    {"U16", 2, false},     {"I32", 4, false},    {"U32", 4, false},     {"I64", 8, false},
    {"U64", 8, false},     {"F8_E4M3", 1, false}, {"F8_E5M2", 1, false},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

struct Entry {
  std::string name;
  const DTypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

// ---- writing ----------------------------------------------------------------------------

std::string encode_safetensors(const StateDict& tensors, const Metadata& metadata, bool checksum) {
  RECON_CHECK(!checksum || metadata.count(kDataCrc32Key) == 0,
              "save_safetensors: metadata key \"" << kDataCrc32Key << "\" is reserved for the checksum");
  std::vector<std::vector<float>> host;
  host.reserve(tensors.size());
  Json entries = Json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    RECON_CHECK(name != "__metadata__", "save_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    {
      NoGradGuard no_grad;  // to_vector may copy across devices
      host.push_back(t.to_vector());
    }
    Json shape = Json::array();
    for (int64_t d : t.shape()) shape.push_back(Json(d));
    uint64_t bytes = (uint64_t)t.numel() * sizeof(float);
    Json info = Json::object();
    info.set("dtype", "F32");
    info.set("shape", std::move(shape));
    info.set("data_offsets", Json::array({Json((int64_t)offset), Json((int64_t)(offset + bytes))}));
    entries.set(name, std::move(info));
    offset += bytes;
  }
  std::string data;
  data.reserve(offset);
  for (const auto& v : host) data.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  Json header = Json::object();
  if (!metadata.empty() || checksum) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta.set(k, Json(v));
    if (checksum) meta.set(kDataCrc32Key, Json(hex32(crc32_of(data))));
    header.set("__metadata__", std::move(meta));
  }
  for (auto& [name, info] : entries.as_object()) header.set(name, std::move(info));
  std::string json = header.dump();
  json.append((kAlign - (8 + json.size()) % kAlign) % kAlign, ' ');
  std::string out;
  out.reserve(8 + json.size() + data.size());
  uint64_t n = json.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += json;
  out += data;
  return out;
}

void write_file_atomic(const std::string& path, std::string_view bytes, const std::string& keep_previous) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  RECON_CHECK(f != nullptr, "cannot write " << path << ": cannot open " << tmp << ": " << std::strerror(errno));
  // The first error wins: later calls on a failed stream may set another errno.
  int err = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) err = errno ? errno : EIO;
  if (!err && std::fflush(f) != 0) err = errno;
  if (!err && ::fsync(fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && !err) err = errno;
  if (err) {
    std::remove(tmp.c_str());
    RECON_FAIL("cannot write " << path << " (writing " << tmp << "): " << std::strerror(err) << "; " << path
                               << " was left as it was");
  }
  if (!keep_previous.empty() && ::access(path.c_str(), F_OK) == 0) {
    // link + rename: `keep_previous` is at every moment either its old
    // version or the complete file now at `path`.
    const std::string prev_tmp = keep_previous + ".tmp";
    std::remove(prev_tmp.c_str());
    if (::link(path.c_str(), prev_tmp.c_str()) != 0 || std::rename(prev_tmp.c_str(), keep_previous.c_str()) != 0) {
      err = errno;
      std::remove(prev_tmp.c_str());
      std::remove(tmp.c_str());
      RECON_FAIL("cannot write " << path << ": cannot keep the previous version as " << keep_previous << ": "
                                 << std::strerror(err));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    RECON_FAIL("cannot rename " << tmp << " to " << path << ": " << std::strerror(err));
  }
  // Make the rename itself durable.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata, bool checksum) {
  write_file_atomic(path, encode_safetensors(tensors, metadata, checksum));
}

// ---- reading ----------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RECON_CHECK(in.good(), "cannot open " << path << ": " << std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  RECON_CHECK(!in.bad(), "cannot read " << path);
  return ss.str();
}

SafetensorsContents decode_safetensors(std::string_view bytes, const std::string& source) {
#define ST_CHECK(cond, msg) RECON_CHECK(cond, "safetensors: " << source << ": " << msg)
  ST_CHECK(bytes.size() >= 8, "truncated file: " << bytes.size()
                                                 << " bytes, but a safetensors file starts with an 8-byte header length");
  const uint64_t n = read_u64_le(bytes.data());
  ST_CHECK(n <= bytes.size() - 8, "header length " << n << " runs past the end of the file (" << bytes.size()
                                                   << " bytes): truncated or not a safetensors file");
  ST_CHECK(n <= kMaxHeaderBytes, "header length " << n << " exceeds the 100 MB limit");
  std::string_view header_text = bytes.substr(8, n);
  const std::string_view data = bytes.substr(8 + n);

  Json header;
  try {
    header = Json::parse(header_text);
  } catch (const Error& e) {
    ST_CHECK(false, "header is not valid JSON: " << e.what());
  }
  ST_CHECK(header.is_object(), "header must be a JSON object, got " << header.type_name());

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.as_object()) {
    if (name == "__metadata__") {
      ST_CHECK(info.is_object(), "\"__metadata__\" must be an object of strings, got " << info.type_name());
      for (const auto& [k, v] : info.as_object()) {
        ST_CHECK(v.is_string(), "\"__metadata__\" value \"" << k << "\" must be a string, got " << v.type_name());
        out.metadata[k] = v.as_string();
      }
      continue;
    }
    ST_CHECK(info.is_object(), "tensor \"" << name << "\": entry must be an object, got " << info.type_name());
    const Json* dt = info.find("dtype");
    const Json* sh = info.find("shape");
    const Json* off = info.find("data_offsets");
    ST_CHECK(dt && dt->is_string(), "tensor \"" << name << "\": missing or non-string \"dtype\"");
    ST_CHECK(sh && sh->is_array(), "tensor \"" << name << "\": missing or non-array \"shape\"");
    ST_CHECK(off && off->is_array() && off->size() == 2,
             "tensor \"" << name << "\": \"data_offsets\" must be an array [begin, end]");
    Entry e{name, find_dtype(dt->as_string()), {}, 0, 0};
    ST_CHECK(e.dtype != nullptr, "tensor \"" << name << "\": unknown dtype \"" << dt->as_string() << "\"");
    ST_CHECK(e.dtype->supported, "tensor \"" << name << "\": dtype " << e.dtype->name
                                             << " is not supported (ReconAD reads F32, F16, BF16 and F64)");
    uint64_t numel = 1;
    for (const Json& d : sh->as_array()) {
      ST_CHECK(d.is_integer() && d.as_int() >= 0,
               "tensor \"" << name << "\": shape entries must be non-negative integers, got " << d.dump());
      ST_CHECK(!__builtin_mul_overflow(numel, (uint64_t)d.as_int(), &numel),
               "tensor \"" << name << "\": shape " << sh->dump() << " overflows");
      e.shape.push_back(d.as_int());
    }
    const Json& b = off->as_array()[0];
    const Json& en = off->as_array()[1];
    ST_CHECK(b.is_integer() && en.is_integer() && b.as_int() >= 0 && en.as_int() >= b.as_int(),
             "tensor \"" << name << "\": data_offsets " << off->dump() << " must be integers with 0 <= begin <= end");
    e.begin = (uint64_t)b.as_int();
    e.end = (uint64_t)en.as_int();
    ST_CHECK(e.end <= data.size(), "tensor \"" << name << "\": data_offsets " << off->dump()
                                               << " run past the end of the data (" << data.size()
                                               << " bytes): truncated file?");
    uint64_t want = 0;
    ST_CHECK(!__builtin_mul_overflow(numel, (uint64_t)e.dtype->size, &want),
             "tensor \"" << name << "\": shape " << sh->dump() << " overflows");
    ST_CHECK(want == e.end - e.begin, "tensor \"" << name << "\": shape " << sh->dump() << " of " << e.dtype->name
                                                  << " needs " << want << " bytes, but data_offsets " << off->dump()
                                                  << " hold " << (e.end - e.begin));
    entries.push_back(std::move(e));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Ranges holding bytes must not overlap (empty ones hold none).
  const Entry* prev = nullptr;
  for (const Entry& c : entries) {
    if (c.begin == c.end) continue;
    if (!prev) {
      prev = &c;
      continue;
    }
    const Entry& p = *prev;
    prev = &c;
    ST_CHECK(c.begin >= p.end, "tensors \"" << p.name << "\" [" << p.begin << ", " << p.end << ") and \"" << c.name
                                            << "\" [" << c.begin << ", " << c.end << ") overlap");
  }

  // After the structure checks, so that a truncated file is called truncated.
  if (auto it = out.metadata.find(kDataCrc32Key); it != out.metadata.end()) {
    const std::string got = hex32(crc32_of(data));
    ST_CHECK(got == it->second, "corrupted data: the CRC-32 of the " << data.size() << " data bytes is " << got
                                    << ", the header records " << it->second << " (bit flips or a partial overwrite)");
  }

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape);
    float* dst = t.data();
    const char* src = data.data() + e.begin;
    const int64_t count = t.numel();
    if (std::string_view(e.dtype->name) == "F32") {
      if (count > 0) std::memcpy(dst, src, (size_t)count * 4);
    } else if (std::string_view(e.dtype->name) == "F64") {
      for (int64_t i = 0; i < count; ++i) {
        double v;
        std::memcpy(&v, src + 8 * i, 8);
        dst[i] = (float)v;
      }
    } else {
      const bool is_half = std::string_view(e.dtype->name) == "F16";
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = is_half ? half_to_float(h) : bf16_to_float(h);
      }
    }
    out.tensors.insert(e.name, std::move(t));
  }
  return out;
#undef ST_CHECK
}

SafetensorsContents load_safetensors(const std::string& path) { return decode_safetensors(read_file(path), path); }

}  // namespace recon::nn
