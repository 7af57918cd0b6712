// Variable-length string descriptors that name no global heap object (issue #11, fuzz file
// 01583): HDF5 1.10.8 follows such an index without a bounds check and may crash, so
// H5File::readStrings checks each stored descriptor against the collection's bytes first
// (core/record/h5_vlen_check.cpp). The descriptors are rewritten here byte by byte, both in
// contiguous storage (as KDScope writes vocabularies) and in deflated chunks with the
// shuffle filter set (as h5py and chunked writers store them; HDF5 skips the shuffle for
// variable-length elements and records that in each chunk's filter mask), and the refusal must name the file, the dataset and
// the string; untouched files must read exactly as written.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

using test::messageOf;
using test::TempDir;

const std::vector<std::string> kWords = {"the", "", "café", "distillation", "教师", "x"};

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// A contiguous vlen string dataset, written by H5File as the recorder writes vocabularies.
std::string contiguousFile(TempDir& dir) {
  const std::string path = dir.path("contiguous.h5");
  H5File file(path, H5File::Mode::Create);
  file.writeStrings("/words", kWords);
  return path;
}

/// The same strings in two chunks of 4, shuffled and deflated, written with the C API.
std::string chunkedFile(TempDir& dir) {
  const std::string path = dir.path("chunked.h5");
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const hsize_t dims[1] = {kWords.size()};
  const hsize_t chunk[1] = {4};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, chunk);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 6);
  const hid_t d = H5Dcreate2(f, "/words", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  std::vector<const char*> pointers;
  for (const auto& w : kWords) {
    pointers.push_back(w.c_str());
  }
  H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data());
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);
  return path;
}

/// The byte offset of descriptor `element` in a contiguous dataset.
std::uint64_t contiguousDescriptor(const std::string& path, int element) {
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/words", H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  return offset + 16U * static_cast<std::uint64_t>(element);
}

/// Rewrites the 4-byte object index of descriptor `element` (inside chunk 1, elements 4..5)
/// of the chunked dataset: inflate, unshuffle, change, shuffle, deflate, write back raw.
/// `previous` receives the index it replaced.
void setChunkedIndex(const std::string& path, int element, std::uint32_t index, std::uint32_t& previous) {
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/words", H5P_DEFAULT);
  const hsize_t offset[1] = {4};
  hsize_t stored = 0;
  H5Dget_chunk_storage_size(d, offset, &stored);
  std::vector<unsigned char> raw(stored);
  std::uint32_t mask = 0;
  ASSERT_GE(H5Dread_chunk(d, H5P_DEFAULT, offset, &mask, raw.data()), 0);
  std::vector<unsigned char> shuffled(4 * 16);
  uLongf size = shuffled.size();
  ASSERT_EQ(uncompress(shuffled.data(), &size, raw.data(), raw.size()), Z_OK);
  ASSERT_EQ(size, 4U * 16U);
  // HDF5 skips the (optional) shuffle filter for variable-length elements and says so in
  // the chunk's filter mask (bit 0), as the checker must honour too.
  const bool shuffledChunk = (mask & 1U) == 0;
  std::vector<unsigned char> plain(shuffled);
  for (std::size_t b = 0; shuffledChunk && b < 16; ++b) {
    for (std::size_t e = 0; e < 4; ++e) {
      plain[e * 16 + b] = shuffled[b * 4 + e];
    }
  }
  std::memcpy(&previous, plain.data() + static_cast<std::size_t>(element - 4) * 16 + 12, 4);
  std::memcpy(plain.data() + static_cast<std::size_t>(element - 4) * 16 + 12, &index, 4);
  shuffled = plain;
  for (std::size_t b = 0; shuffledChunk && b < 16; ++b) {
    for (std::size_t e = 0; e < 4; ++e) {
      shuffled[b * 4 + e] = plain[e * 16 + b];
    }
  }
  std::vector<unsigned char> packed(compressBound(shuffled.size()));
  uLongf packedSize = packed.size();
  ASSERT_EQ(compress(packed.data(), &packedSize, shuffled.data(), shuffled.size()), Z_OK);
  ASSERT_GE(H5Dwrite_chunk(d, H5P_DEFAULT, mask, offset, packedSize, packed.data()), 0);
  H5Dclose(d);
  H5Fclose(f);
}

TEST(VlenDescriptors, IntactStringsReadExactlyAsWritten) {
  TempDir dir;
  EXPECT_EQ(H5File(contiguousFile(dir), H5File::Mode::ReadOnly).readStrings("/words"), kWords);
  EXPECT_EQ(H5File(chunkedFile(dir), H5File::Mode::ReadOnly).readStrings("/words"), kWords);
}

TEST(VlenDescriptors, AContiguousDescriptorNamingNoHeapObjectIsRefused) {
  TempDir dir;
  const std::string good = contiguousFile(dir);
  const std::string bytes = readBytes(good);
  // String 3 ("distillation"), index bit 31 flipped as in fuzz file 01583.
  const std::uint64_t at = contiguousDescriptor(good, 3);
  std::uint32_t index = 0;
  std::memcpy(&index, bytes.data() + at + 12, 4);
  ASSERT_GT(index, 0U);
  std::string corrupt = bytes;
  const std::uint32_t flipped = index | (1U << 31U);
  std::memcpy(corrupt.data() + at + 12, &flipped, 4);
  const std::string path = dir.path("index.h5");
  writeBytes(path, corrupt);
  const std::string message =
      messageOf<InputError>([&] { (void)H5File(path, H5File::Mode::ReadOnly).readStrings("/words"); });
  EXPECT_EQ(message.rfind(path + ": /words: the file is corrupt: string 3 names object " + std::to_string(flipped), 0),
            0U)
      << message;

  // The collection address moved by one flipped bit: no collection there.
  corrupt = bytes;
  corrupt[at + 4 + 3] = static_cast<char>(corrupt[at + 4 + 3] ^ 0x02);
  writeBytes(path, corrupt);
  const std::string moved =
      messageOf<InputError>([&] { (void)H5File(path, H5File::Mode::ReadOnly).readStrings("/words"); });
  EXPECT_NE(moved.find("/words: the file is corrupt: string 3 points to byte "), std::string::npos) << moved;
  EXPECT_NE(moved.find("which holds no global heap collection"), std::string::npos) << moved;

  // A length longer than the heap object holds.
  corrupt = bytes;
  const std::uint32_t longer = 13; // "distillation" is 12 bytes
  std::memcpy(corrupt.data() + at, &longer, 4);
  writeBytes(path, corrupt);
  const std::string longMessage =
      messageOf<InputError>([&] { (void)H5File(path, H5File::Mode::ReadOnly).readStrings("/words"); });
  EXPECT_NE(longMessage.find("string 3 claims 13 bytes, but its global heap object holds 12"), std::string::npos)
      << longMessage;
}

TEST(VlenDescriptors, ADescriptorInADeflatedChunkNamingNoHeapObjectIsRefused) {
  TempDir dir;
  const std::string path = chunkedFile(dir);
  std::uint32_t original = 0;
  setChunkedIndex(path, 5, 4000, original);
  ASSERT_GT(original, 0U);
  const std::string message =
      messageOf<InputError>([&] { (void)H5File(path, H5File::Mode::ReadOnly).readStrings("/words"); });
  EXPECT_EQ(message.rfind(path + ": /words: the file is corrupt: string 5 names object 4000 of the global heap "
                                 "collection at byte ",
                          0),
            0U)
      << message;
  // Its true index written back the same way: the file reads whole again, so the refusal
  // came from the index and not from the rewriting.
  std::uint32_t lie = 0;
  setChunkedIndex(path, 5, original, lie);
  EXPECT_EQ(lie, 4000U);
  EXPECT_EQ(H5File(path, H5File::Mode::ReadOnly).readStrings("/words"), kWords);
}

/// The offset of the one descriptor in `bytes` that holds `length` and points to a global
/// heap collection (the file's first), or npos.
std::size_t findDescriptor(const std::string& bytes, std::uint32_t length) {
  const std::size_t collection = bytes.find(std::string("GCOL\x01\0\0\0", 8));
  if (collection == std::string::npos) {
    return std::string::npos;
  }
  std::string pattern(12, '\0');
  std::memcpy(pattern.data(), &length, 4);
  const std::uint64_t address = collection;
  std::memcpy(pattern.data() + 4, &address, 8);
  const std::size_t at = bytes.find(pattern);
  return at != std::string::npos && bytes.find(pattern, at + 1) == std::string::npos ? at : std::string::npos;
}

TEST(VlenDescriptors, AnAttributeDescriptorNamingNoHeapObjectIsRefused) {
  TempDir dir;
  const std::string good = dir.path("attribute.h5");
  const std::string value = "{\"temperature\": 4.0, \"lambda\": 0.7}"; // 35 bytes, a unique length
  {
    H5File file(good, H5File::Mode::Create);
    file.createGroup("/tasks");
    file.setAttr("/tasks", "objective", value);
    file.setAttr("/tasks", "role", std::string("student"));
  }
  EXPECT_EQ(H5File(good, H5File::Mode::ReadOnly).attrString("/tasks", "objective"), value);
  const std::string bytes = readBytes(good);
  const std::size_t at = findDescriptor(bytes, static_cast<std::uint32_t>(value.size()));
  ASSERT_NE(at, std::string::npos) << "the attribute's descriptor is in the object header once";
  std::string corrupt = bytes;
  corrupt[at + 15] = static_cast<char>(corrupt[at + 15] ^ 0x40); // index bit 30, as in fuzz file 06378
  const std::string path = dir.path("corrupt.h5");
  writeBytes(path, corrupt);
  const H5File file(path, H5File::Mode::ReadOnly);
  const std::string message = messageOf<InputError>([&] { (void)file.attrString("/tasks", "objective"); });
  EXPECT_EQ(message.rfind(path + ": /tasks: attribute 'objective': the file is corrupt: string 0 names object ", 0), 0U)
      << message;
  // The other attribute of the same object is intact and still reads.
  EXPECT_EQ(file.attrString("/tasks", "role"), "student");
}

TEST(VlenDescriptors, AttributesInVersion2ObjectHeadersReadWhole) {
  // Files with version 2 object headers ("OHDR", as HDF5 1.8+ writes with libver "v108"): the
  // header parser must find the attribute and let intact strings through.
  TempDir dir;
  const std::string path = dir.path("v2.h5");
  {
    const std::lock_guard<std::mutex> lock(hdf5Mutex());
    const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    const hid_t g = H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    const hsize_t two[1] = {2};
    const hid_t space = H5Screate_simple(1, two, nullptr);
    const hid_t attr = H5Acreate2(g, "names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* values[2] = {"teacher", "student"};
    H5Awrite(attr, type, values);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Gclose(g);
    H5Fclose(f);
    H5Pclose(fapl);
  }
  ASSERT_NE(readBytes(path).find("OHDR"), std::string::npos);
  EXPECT_EQ(H5File(path, H5File::Mode::ReadOnly).attrStrings("/g", "names"),
            (std::vector<std::string>{"teacher", "student"}));
}

} // namespace
} // namespace kdscope::core
