// Image files: decoding through stb_image (PNG, JPEG, BMP, TGA; gray or
// colour; 8 or 16 bit) into float Images in [0, 1], and writers (PNG 8 and
// 16 bit, BMP, JPEG) for masks, heat maps and test fixtures. Every failure
// is a recon::Error that names the file and the problem.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image.hpp"

namespace recon::data {

// channels: 0 keeps the file's own (gray and gray+alpha -> 1, colour and
// colour+alpha -> 3; alpha is dropped); 1 converts to gray (ITU-R BT.601
// luma), 3 to RGB.
Image read_image(const std::filesystem::path& path, int channels = 0);
// The same from bytes in memory; `name` is used in error messages.
Image decode_image(const uint8_t* bytes, size_t n, int channels, const std::string& name);
// A mask: read as gray and binarised (pixel > 0.5 -> 1, else 0).
Image read_mask(const std::filesystem::path& path);

// True for the extensions read_image understands (.png .jpg .jpeg .bmp .tga,
// any case).
bool is_image_file(const std::filesystem::path& path);
// The image files directly inside `dir` (not recursive), sorted by name.
// Throws when `dir` is not a directory.
std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir);

// Writers take 1 or 3 channels; values are clamped to [0, 1] and rounded.
void write_png(const std::filesystem::path& path, const Image& img);
void write_png16(const std::filesystem::path& path, const Image& img);  // 16 bit per channel
void write_bmp(const std::filesystem::path& path, const Image& img);
void write_tga(const std::filesystem::path& path, const Image& img);
void write_jpeg(const std::filesystem::path& path, const Image& img, int quality = 95);

// Planar (C, H, W) floats <-> interleaved 8-bit (H, W, C) bytes.
std::vector<uint8_t> to_interleaved_u8(const Image& img);

}  // namespace recon::data
