// Tests of the HDF5 wrapper: every type round-trips with known values, rows stream across
// chunks, and every error names the file and the object. h5py's view of the same files is
// checked in test_run_file.cpp.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "core/common/error.h"
#include "core/record/h5_file.h"
#include "tests/core/test_support.h"

namespace kdscope::core {
namespace {

using test::messageOf;
using test::TempDir;

class H5FileTest : public ::testing::Test {
protected:
  TempDir m_dir{"h5"};
  std::string m_path = m_dir.file("run.h5");
};

TEST_F(H5FileTest, Float32RoundTripKeepsEveryValueExactly) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values{0.1f, -2.5f, 3.4028235e38f, 1.4e-45f /* smallest subnormal */,
                                  inf,  -inf,  0.0f,          7.0f};
  {
    H5File f(m_path, H5File::Mode::Create);
    f.writeFloat("/a/b/values", {4, 2}, values);
    EXPECT_EQ(f.type("/a/b/values"), H5Type::Float32);
    EXPECT_EQ(f.typeName("/a/b/values"), "float32");
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.shape("/a/b/values"), (std::vector<std::uint64_t>{4, 2}));
  const std::vector<float> back = f.readFloat("/a/b/values");
  ASSERT_EQ(back.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(back[i], values[i]) << i;
  }
  // Rows 1..3 of [4, 2] are elements 2..5.
  EXPECT_EQ(f.readFloat("/a/b/values", 1, 2), (std::vector<float>{3.4028235e38f, 1.4e-45f, inf, -inf}));
}

TEST_F(H5FileTest, Float16RoundsToNearestHalfWithTiesToEven) {
  // Expected values worked out on the half grid (10 mantissa bits, exponent bias 15).
  struct Case {
    float in;
    float out;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases{
      {0.1f, 0.0999755859375f},       // 0x2E66
      {1.0f / 3.0f, 0.333251953125f}, // 0x3555
      {65504.0f, 65504.0f},           // largest finite half
      {65519.0f, 65504.0f},           // below the midpoint to 65536
      {65520.0f, inf},                // the midpoint rounds to even: infinity
      {1e5f, inf},
      {-1e5f, -inf},
      {1.0f + 1.0f / 2048.0f, 1.0f},                  // midpoint of 1 and 1 + 2^-10: even is 1
      {1.0f + 3.0f / 2048.0f, 1.001953125f},          // midpoint of 1 + 2^-10 and 1 + 2^-9: even is 1 + 2^-9
      {std::ldexp(1.0f, -24), std::ldexp(1.0f, -24)}, // smallest subnormal
      {std::ldexp(1.0f, -25), 0.0f},                  // its half: ties to 0
      {std::ldexp(3.0f, -25), std::ldexp(1.0f, -23)}, // 1.5 x smallest: even is 2 x
      {std::ldexp(1023.25f, -24), std::ldexp(1023.0f, -24)}, // largest subnormal
      {std::ldexp(1023.5f, -24), std::ldexp(1.0f, -14)},     // ties to even: carries into the smallest normal
      {-2.0f, -2.0f},
  };
  std::vector<float> in;
  for (const Case& c : cases) {
    in.push_back(c.in);
  }
  in.push_back(-0.0f);
  in.push_back(std::numeric_limits<float>::quiet_NaN());
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createDataset("/half", H5Type::Float16, {in.size()});
    f.writeRows("/half", 0, in.size(), in.data());
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.type("/half"), H5Type::Float16);
  EXPECT_EQ(f.typeName("/half"), "float16");
  const std::vector<float> back = f.readFloat("/half");
  ASSERT_EQ(back.size(), in.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(back[i], cases[i].out) << "input " << cases[i].in;
  }
  EXPECT_EQ(back[cases.size()], 0.0f);
  EXPECT_TRUE(std::signbit(back[cases.size()])) << "-0 keeps its sign";
  EXPECT_TRUE(std::isnan(back[cases.size() + 1]));
}

TEST_F(H5FileTest, Float16StoresEveryFiniteHalfValueExactly) {
  // Every finite half, built from its definition: subnormals m * 2^-24, normals
  // (1 + m / 1024) * 2^(e - 15), both signs. 63,490 values.
  std::vector<float> halves;
  for (int sign : {1, -1}) {
    for (int m = 0; m < 1024; ++m) {
      halves.push_back(static_cast<float>(sign) * std::ldexp(static_cast<float>(m), -24));
    }
    for (int e = 1; e <= 30; ++e) {
      for (int m = 0; m < 1024; ++m) {
        halves.push_back(static_cast<float>(sign) *
                         std::ldexp(1.0f + static_cast<float>(m) / 1024.0f, e - 15));
      }
    }
  }
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createDataset("/half", H5Type::Float16, {halves.size()}, false, 0, /*compress=*/true);
    f.writeRows("/half", 0, halves.size(), halves.data());
  }
  const std::vector<float> back = H5File(m_path, H5File::Mode::ReadOnly).readFloat("/half");
  ASSERT_EQ(back.size(), halves.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < halves.size(); ++i) {
    mismatches += back[i] == halves[i] ? 0 : 1;
  }
  EXPECT_EQ(mismatches, 0U);
  EXPECT_EQ(back[1], std::ldexp(1.0f, -24));
  EXPECT_EQ(back[1024 + 30 * 1024 - 1], 65504.0f);
}

TEST_F(H5FileTest, Int64RoundTripKeepsExtremes) {
  const std::vector<std::int64_t> values{std::numeric_limits<std::int64_t>::min(),
                                         -1,
                                         0,
                                         1,
                                         std::numeric_limits<std::int64_t>::max(),
                                         9007199254740993 /* 2^53 + 1 */};
  {
    H5File f(m_path, H5File::Mode::Create);
    f.writeInt64("/ints", {3, 2}, values, /*compress=*/true);
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.type("/ints"), H5Type::Int64);
  EXPECT_EQ(f.typeClass("/ints"), H5TypeClass::Integer);
  EXPECT_EQ(f.readInt64("/ints"), values);
  EXPECT_EQ(f.readInt64("/ints", 2, 1),
            (std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::max(), 9007199254740993}));
}

TEST_F(H5FileTest, StringsRoundTripAsUtf8AndBrokenBytesBecomeReplacementCharacters) {
  const std::vector<std::string> strings{"plain",
                                         "na\xC3\xAFve caf\xC3\xA9",
                                         "\xE6\x97\xA5\xE6\x9C\xAC",
                                         "",
                                         "\xF0\x9F\x98\x80 emoji",
                                         std::string("nul\0byte", 8),
                                         "latin1 \xE9t\xE9",
                                         "cut \xE2\x82",
                                         "surrogate \xED\xA0\x80"};
  {
    H5File f(m_path, H5File::Mode::Create);
    f.writeStrings("/texts", strings);
    f.writeStrings("/none", {});
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.type("/texts"), H5Type::String);
  const std::vector<std::string> back = f.readStrings("/texts");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(back, (std::vector<std::string>{"plain", "na\xC3\xAFve caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
                                            "", "\xF0\x9F\x98\x80 emoji", "nul" + fffd + "byte",
                                            "latin1 " + fffd + "t" + fffd, "cut " + fffd,
                                            // ED A0 is never valid (a surrogate): each byte is replaced
                                            "surrogate " + fffd + fffd + fffd}));
  EXPECT_TRUE(f.readStrings("/none").empty());
  EXPECT_EQ(f.shape("/none"), (std::vector<std::uint64_t>{0}));
}

TEST_F(H5FileTest, AttributesOfEveryTypeRoundTripAndCanBeReplaced) {
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createGroup("/g");
    f.setAttr("/", "name", std::string("kdscope-run"));
    f.setAttr("/", "cstr", "\xC3\xA9t\xC3\xA9");
    f.setAttr("/", "empty", "");
    f.setAttr("/g", "count", std::int64_t{-9000000000});
    f.setAttr("/g", "ratio", 0.125);
    f.setAttr("/g", "names", std::vector<std::string>{"neg", "pos", "\xE2\x9C\x93"});
    f.setAttr("/g", "one", std::vector<std::string>{"only"});
    f.setAttr("/g", "nothing", std::vector<std::string>{});
    f.setAttr("/g", "replaced", std::int64_t{1});
    f.setAttr("/g", "replaced", "now a string");
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.attrString("/", "name"), "kdscope-run");
  EXPECT_EQ(f.attrString("/", "cstr"), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(f.attrString("/", "empty"), "");
  EXPECT_EQ(f.attrInt("/g", "count"), -9000000000);
  EXPECT_EQ(f.attrDouble("/g", "ratio"), 0.125);
  EXPECT_EQ(f.attrDouble("/g", "count"), -9e9) << "an integer attribute reads as a double too";
  EXPECT_EQ(f.attrStrings("/g", "names"), (std::vector<std::string>{"neg", "pos", "\xE2\x9C\x93"}));
  EXPECT_EQ(f.attrStrings("/g", "one"), (std::vector<std::string>{"only"}));
  EXPECT_EQ(f.attrString("/g", "one"), "only");
  EXPECT_TRUE(f.attrStrings("/g", "nothing").empty());
  EXPECT_EQ(f.attrString("/g", "replaced"), "now a string");
  EXPECT_TRUE(f.hasAttr("/g", "ratio"));
  EXPECT_FALSE(f.hasAttr("/g", "absent"));
}

TEST_F(H5FileTest, AttributeErrorsNameTheFileTheObjectAndTheAttribute) {
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createGroup("/tasks/t");
    f.setAttr("/tasks/t", "num_classes", "two");
    f.setAttr("/tasks/t", "ratio", 0.5);
    f.setAttr("/tasks/t", "names", std::vector<std::string>{"a", "b"});
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrInt("/tasks/t", "missing"); }),
            m_path + ": /tasks/t: attribute 'missing' is missing");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrInt("/tasks/t", "num_classes"); }),
            m_path + ": /tasks/t: attribute 'num_classes' is string, expected an integer");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrInt("/tasks/t", "ratio"); }),
            m_path + ": /tasks/t: attribute 'ratio' is float64, expected an integer");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrString("/tasks/t", "ratio"); }),
            m_path + ": /tasks/t: attribute 'ratio' holds float64, expected strings");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrString("/tasks/t", "names"); }),
            m_path + ": /tasks/t: attribute 'names' holds 2 strings, expected one");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.attrString("/tasks/nope", "x"); }),
            m_path + ": /tasks/nope: cannot read attribute 'x': no such group or dataset");
}

TEST_F(H5FileTest, AppendRowsStreamsAcrossChunkBoundaries) {
  std::vector<float> expected;
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createDataset("/log/loss", H5Type::Float32, {0, 2}, /*extendable=*/true, /*chunkRows=*/4,
                    /*compress=*/true);
    float next = 0.0f;
    for (const std::uint64_t rows : {3, 5, 7, 1}) { // 3, 8, 15, 16: crosses 4 chunk boundaries
      std::vector<float> block;
      for (std::uint64_t i = 0; i < rows * 2; ++i) {
        block.push_back(next);
        next += 0.5f;
      }
      f.appendRows("/log/loss", rows, block.data());
      expected.insert(expected.end(), block.begin(), block.end());
    }
    f.createDataset("/log/step", H5Type::Int64, {0}, true, 4);
    const std::vector<std::int64_t> steps{10, 20, 30, 40, 50};
    f.appendRows("/log/step", 2, steps.data());
    f.appendRows("/log/step", 3, steps.data() + 2);
    f.appendRows("/log/step", 0, steps.data());
  }
  {
    const H5File f(m_path, H5File::Mode::ReadOnly);
    EXPECT_EQ(f.shape("/log/loss"), (std::vector<std::uint64_t>{16, 2}));
    EXPECT_EQ(f.readFloat("/log/loss"), expected);
    // Rows 5..11 span the second and third chunks: elements 10..21, values 5.0 .. 10.5.
    const std::vector<float> middle = f.readFloat("/log/loss", 5, 6);
    ASSERT_EQ(middle.size(), 12U);
    EXPECT_EQ(middle.front(), 5.0f);
    EXPECT_EQ(middle.back(), 10.5f);
    EXPECT_EQ(f.readInt64("/log/step"), (std::vector<std::int64_t>{10, 20, 30, 40, 50}));
    EXPECT_EQ(f.readInt64("/log/step", 5), std::vector<std::int64_t>{})
        << "reading from the end gives nothing";
  }

  // Closed above: HDF5 refuses to open a file twice with different close degrees. The layout the caller asked
  // for: 4-row chunks, unlimited rows, shuffle + deflate.
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t file = H5Fopen(m_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(file, "/log/loss", H5P_DEFAULT);
  const hid_t dcpl = H5Dget_create_plist(dataset);
  hsize_t chunk[2] = {0, 0};
  EXPECT_EQ(H5Pget_chunk(dcpl, 2, chunk), 2);
  EXPECT_EQ(chunk[0], 4U);
  EXPECT_EQ(chunk[1], 2U);
  EXPECT_EQ(H5Pget_nfilters(dcpl), 2);
  EXPECT_EQ(H5Pget_filter2(dcpl, 0, nullptr, nullptr, nullptr, 0, nullptr, nullptr), H5Z_FILTER_SHUFFLE);
  unsigned level = 0;
  std::size_t levels = 1;
  EXPECT_EQ(H5Pget_filter2(dcpl, 1, nullptr, &levels, &level, 0, nullptr, nullptr), H5Z_FILTER_DEFLATE);
  EXPECT_EQ(level, 4U);
  const hid_t space = H5Dget_space(dataset);
  hsize_t dims[2];
  hsize_t maxDims[2];
  H5Sget_simple_extent_dims(space, dims, maxDims);
  EXPECT_EQ(maxDims[0], H5S_UNLIMITED);
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Dclose(dataset);
  H5Fclose(file);
}

TEST_F(H5FileTest, LargeRowsAreSplitSoThatNoChunkExceedsOneMebibyte) {
  {
    H5File f(m_path, H5File::Mode::Create);
    // One row is 12 x 12 x 128 x 128 x 4 bytes = 9 MiB.
    f.createDataset("/attention", H5Type::Float32, {4, 12, 12, 128, 128}, false, 256, true);
    f.createDataset("/logits", H5Type::Float32, {1000, 3}, false, 256, true);
  }
  const std::lock_guard<std::mutex> lock(hdf5Mutex());
  const hid_t file = H5Fopen(m_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const auto chunkOf = [&](const char* path, int rank) {
    const hid_t dataset = H5Dopen2(file, path, H5P_DEFAULT);
    const hid_t dcpl = H5Dget_create_plist(dataset);
    std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
    H5Pget_chunk(dcpl, rank, chunk.data());
    H5Pclose(dcpl);
    H5Dclose(dataset);
    return chunk;
  };
  // One example, then layers halved 12 -> 6 -> 3 -> 2 -> 1: 12 heads x 128 x 128 x 4 bytes = 768 KiB.
  EXPECT_EQ(chunkOf("/attention", 5), (std::vector<hsize_t>{1, 1, 12, 128, 128}));
  EXPECT_EQ(chunkOf("/logits", 2), (std::vector<hsize_t>{256, 3}));
  H5Fclose(file);
}

TEST_F(H5FileTest, WritingRowsOutsideTheDatasetNamesFileObjectAndRows) {
  H5File f(m_path, H5File::Mode::Create);
  f.createDataset("/tasks/polarity/eval/logits", H5Type::Float32, {50, 2}, false, 64, true);
  const std::vector<float> block(64, 1.0f);
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/tasks/polarity/eval/logits", 32, 32, block.data()); }),
            m_path + ": /tasks/polarity/eval/logits: cannot write rows 32..64: dataset has 50 rows");
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/tasks/polarity/eval/logits", 60, 1, block.data()); }),
            m_path + ": /tasks/polarity/eval/logits: cannot write rows 60..61: dataset has 50 rows");
  // The rows that fit are written; the rest keep the NaN fill value.
  f.writeRows("/tasks/polarity/eval/logits", 18, 32, block.data());
  const std::vector<float> back = f.readFloat("/tasks/polarity/eval/logits");
  EXPECT_TRUE(std::isnan(back[0]));
  EXPECT_TRUE(std::isnan(back[35]));
  EXPECT_EQ(back[36], 1.0f);
  EXPECT_EQ(back[99], 1.0f);
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.readFloat("/tasks/polarity/eval/logits", 40, 20); }),
            m_path + ": /tasks/polarity/eval/logits: cannot read rows 40..60: dataset has 50 rows");
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/tasks/polarity/eval/nothing", 0, 1, block.data()); }),
            m_path + ": /tasks/polarity/eval/nothing: no such dataset");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.readFloat("/tasks/polarity"); }),
            m_path + ": /tasks/polarity: is not a dataset");
}

TEST_F(H5FileTest, ElementTypeMismatchesAreRefused) {
  H5File f(m_path, H5File::Mode::Create);
  f.writeInt64("/labels", {3}, {0, 1, 0});
  f.writeFloat("/loss", {2}, {0.5f, 0.25f});
  f.writeStrings("/names", {"a"});
  const float one = 1.0f;
  const std::int64_t two = 2;
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/labels", 0, 1, &one); }),
            m_path + ": /labels: cannot write float values into a dataset of int64");
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/loss", 0, 1, &two); }),
            m_path + ": /loss: cannot write integer values into a dataset of float32");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.readFloat("/labels"); }),
            m_path + ": /labels: holds int64, expected floating point values");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.readInt64("/names"); }),
            m_path + ": /names: holds string, expected integer values");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.readStrings("/loss"); }),
            m_path + ": /loss: the dataset holds float32, expected strings");
  EXPECT_EQ(messageOf<JobError>([&] {
              f.writeFloat("/bad", {2, 2}, {1.0f});
            }),
            m_path + ": /bad: 1 values do not fill the shape [2, 2]");
  EXPECT_EQ(messageOf<JobError>([&] { f.appendRows("/loss", 1, &one); }),
            m_path + ": /loss: cannot append rows: the dataset is not extendable");
  EXPECT_EQ(messageOf<JobError>([&] { f.createDataset("/loss", H5Type::Float32, {1}); }),
            m_path + ": /loss: cannot create the dataset: the path exists");
}

TEST_F(H5FileTest, ResizeShrinksAndGrowsWithNaNRows) {
  H5File f(m_path, H5File::Mode::Create);
  f.createDataset("/x", H5Type::Float32, {0}, true, 8);
  const std::vector<float> values{1, 2, 3, 4, 5};
  f.appendRows("/x", 5, values.data());
  f.resize("/x", 2);
  f.resize("/x", 4);
  const std::vector<float> back = f.readFloat("/x");
  ASSERT_EQ(back.size(), 4U);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], 2.0f);
  EXPECT_TRUE(std::isnan(back[2])) << "grown rows hold the fill value, not the dropped data";
  EXPECT_TRUE(std::isnan(back[3]));
}

TEST_F(H5FileTest, StructureQueriesAndCreationOrder) {
  H5File f(m_path, H5File::Mode::Create);
  f.createGroup("/tasks/b/models");
  f.createGroup("/tasks/b/models"); // existing: nothing happens
  f.createGroup("/tasks/a");
  f.writeInt64("/tasks/b/models/zeta", {1}, {1});
  f.createGroup("/tasks/b/models/teacher");
  f.createGroup("/tasks/b/models/alpha");
  EXPECT_TRUE(f.exists("/"));
  EXPECT_TRUE(f.exists("/tasks/b/models"));
  EXPECT_TRUE(f.exists("tasks/b/models/")) << "leading and trailing slashes are optional";
  EXPECT_FALSE(f.exists("/tasks/c/models"));
  EXPECT_FALSE(f.exists("/tasks/b/models/zeta/below")) << "below a dataset";
  EXPECT_TRUE(f.isGroup("/tasks/a"));
  EXPECT_FALSE(f.isDataset("/tasks/a"));
  EXPECT_TRUE(f.isDataset("/tasks/b/models/zeta"));
  EXPECT_FALSE(f.isGroup("/nothing"));
  EXPECT_EQ(f.children("/tasks/b/models"), (std::vector<std::string>{"alpha", "teacher", "zeta"}));
  EXPECT_EQ(f.childrenInCreationOrder("/tasks/b/models"),
            (std::vector<std::string>{"zeta", "teacher", "alpha"}));
  EXPECT_EQ(f.children("/"), std::vector<std::string>{"tasks"});
  EXPECT_EQ(messageOf<JobError>([&] { f.createGroup("/tasks/b/models/zeta/x"); }),
            m_path + ": /tasks/b/models/zeta: exists and is not a group");
  EXPECT_EQ(messageOf<InputError>([&] { (void)f.children("/tasks/c"); }),
            m_path + ": /tasks/c: no such group");
  f.remove("/tasks/b/models/zeta");
  f.remove("/tasks/a");
  EXPECT_EQ(f.children("/tasks"), std::vector<std::string>{"b"});
  EXPECT_EQ(f.childrenInCreationOrder("/tasks/b/models"), (std::vector<std::string>{"teacher", "alpha"}));
  EXPECT_EQ(messageOf<JobError>([&] { f.remove("/tasks/a"); }),
            m_path + ": /tasks/a: cannot remove: no such group or dataset");
}

TEST_F(H5FileTest, MissingNonHdf5AndDirectoryPathsGiveInputErrors) {
  const std::string missing = m_dir.file("missing.h5");
  EXPECT_EQ(messageOf<InputError>([&] { H5File(missing, H5File::Mode::ReadOnly); }),
            missing + ": no such file");
  EXPECT_EQ(messageOf<InputError>([&] { H5File(missing, H5File::Mode::ReadWrite); }),
            missing + ": no such file");
  const std::string text = m_dir.file("notes.h5");
  std::ofstream(text) << "this is not HDF5\n";
  EXPECT_EQ(messageOf<InputError>([&] { H5File(text, H5File::Mode::ReadOnly); }),
            text + ": not an HDF5 file");
  const std::string empty = m_dir.file("empty.h5");
  std::ofstream(empty).close();
  EXPECT_EQ(messageOf<InputError>([&] { H5File(empty, H5File::Mode::ReadOnly); }),
            empty + ": not an HDF5 file");
  const std::string folder = m_dir.file("");
  EXPECT_EQ(messageOf<InputError>([&] { H5File(folder, H5File::Mode::ReadOnly); }),
            folder + ": is a directory, not a file");
  const std::string noDir = m_dir.file("no/such/dir/run.h5");
  const std::string message = messageOf<JobError>([&] { H5File(noDir, H5File::Mode::Create); });
  EXPECT_EQ(message.rfind(noDir + ": cannot create the file (HDF5: ", 0), 0U) << message;
}

TEST_F(H5FileTest, ReadOnlyFilesRefuseWritesWithJobError) {
  H5File(m_path, H5File::Mode::Create).writeInt64("/x", {1}, {1});
  H5File f(m_path, H5File::Mode::ReadOnly);
  const std::int64_t value = 2;
  EXPECT_EQ(messageOf<JobError>([&] { f.writeRows("/x", 0, 1, &value); }),
            m_path + ": /x: cannot modify: the file is open read-only");
  EXPECT_EQ(messageOf<JobError>([&] { f.setAttr("/", "a", std::int64_t{1}); }),
            m_path + ": /: cannot modify: the file is open read-only");
  EXPECT_NO_THROW(f.flush()) << "nothing to flush";
}

TEST_F(H5FileTest, ReadWriteReopensAndAppends) {
  {
    H5File f(m_path, H5File::Mode::Create);
    f.createDataset("/s", H5Type::Int64, {0}, true, 16);
    const std::vector<std::int64_t> a{1, 2};
    f.appendRows("/s", 2, a.data());
  }
  {
    H5File f(m_path, H5File::Mode::ReadWrite);
    const std::vector<std::int64_t> b{3};
    f.appendRows("/s", 1, b.data());
    f.flush();
  }
  EXPECT_EQ(H5File(m_path, H5File::Mode::ReadOnly).readInt64("/s"), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_F(H5FileTest, MovedFilesKeepWorkingAndCloseOnce) {
  H5File a(m_path, H5File::Mode::Create);
  a.writeInt64("/x", {1}, {7});
  H5File b(std::move(a));
  EXPECT_EQ(b.readInt64("/x"), std::vector<std::int64_t>{7});
  H5File c(m_dir.file("other.h5"), H5File::Mode::Create);
  c = std::move(b); // closes other.h5
  EXPECT_EQ(c.path(), m_path);
  EXPECT_EQ(c.readInt64("/x"), std::vector<std::int64_t>{7});
  EXPECT_TRUE(H5File(m_dir.file("other.h5"), H5File::Mode::ReadOnly).children("/").empty());
}

TEST_F(H5FileTest, WidthsWrittenByOtherToolsAreReadThroughConversion) {
  // float64, int32 and a fixed-length ASCII string attribute, as numpy and h5py defaults write them.
  {
    const std::lock_guard<std::mutex> lock(hdf5Mutex());
    const hid_t file = H5Fcreate(m_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t n = 3;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const double doubles[3] = {0.5, -1.25, 1e300};
    const hid_t d1 = H5Dcreate2(file, "/f64", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, doubles);
    const std::int32_t ints[3] = {-7, 0, 2147483647};
    const hid_t d2 = H5Dcreate2(file, "/i32", H5T_STD_I32BE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d2, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ints);
    const hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 8);
    H5Tset_strpad(fixed, H5T_STR_NULLPAD);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "format", fixed, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, fixed, "abc\0\0\0\0\0");
    H5Aclose(attr);
    H5Sclose(scalar);
    H5Tclose(fixed);
    H5Dclose(d1);
    H5Dclose(d2);
    H5Sclose(space);
    H5Fclose(file);
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.type("/f64"), H5Type::Other);
  EXPECT_EQ(f.typeClass("/f64"), H5TypeClass::Float);
  EXPECT_EQ(f.typeName("/f64"), "float64");
  EXPECT_EQ(f.typeName("/i32"), "int32");
  const std::vector<float> doubles = f.readFloat("/f64");
  EXPECT_EQ(doubles[0], 0.5f);
  EXPECT_EQ(doubles[1], -1.25f);
  EXPECT_TRUE(std::isinf(doubles[2])) << "HDF5 converts an overflowing double to infinity";
  EXPECT_EQ(f.readInt64("/i32"), (std::vector<std::int64_t>{-7, 0, 2147483647}));
  EXPECT_EQ(f.attrString("/", "format"), "abc");
}

TEST_F(H5FileTest, TwoThreadsWriteTwoFilesAtOnce) {
  // Two job threads, each with its own file, interleaving HDF5 calls: each file gets
  // exactly its own rows. (Debian's libhdf5 is built thread-safe, so this passes even
  // without H5File's mutex here; the mutex is for builds that are not.)
  constexpr int kBlocks = 200;
  const auto work = [](const std::string& path, float base) {
    H5File f(path, H5File::Mode::Create);
    f.createDataset("/x", H5Type::Float32, {0, 4}, true, 16, true);
    for (int i = 0; i < kBlocks; ++i) {
      const std::vector<float> row(4, base + static_cast<float>(i));
      f.appendRows("/x", 1, row.data());
      f.setAttr("/", "rows", std::int64_t{i + 1});
    }
  };
  std::thread first(work, m_dir.file("a.h5"), 0.0f);
  std::thread second(work, m_dir.file("b.h5"), 1000.0f);
  first.join();
  second.join();
  const H5File a(m_dir.file("a.h5"), H5File::Mode::ReadOnly);
  const H5File b(m_dir.file("b.h5"), H5File::Mode::ReadOnly);
  EXPECT_EQ(a.attrInt("/", "rows"), kBlocks);
  EXPECT_EQ(b.shape("/x"), (std::vector<std::uint64_t>{kBlocks, 4}));
  EXPECT_EQ(a.readFloat("/x", 199, 1), std::vector<float>(4, 199.0f));
  EXPECT_EQ(b.readFloat("/x", 7, 1), std::vector<float>(4, 1007.0f));
}

TEST_F(H5FileTest, HdfFiveErrorsReachNoStderrFromAnyThread) {
  // Errors travel in our exceptions. HDF5 would also dump its error stack on stderr, and in
  // a thread-safe build (Debian's) that setting is per thread: a job thread must be quiet too.
  const std::string captured = m_dir.file("stderr.txt");
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int fd = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ::dup2(fd, 2);
  ::close(fd);
  const std::string badPath = m_dir.file("no/dir/run.h5");
  const std::string onMain = messageOf<JobError>([&] { H5File(badPath, H5File::Mode::Create); });
  std::string onThread;
  std::thread worker([&] { onThread = messageOf<JobError>([&] { H5File(badPath, H5File::Mode::Create); }); });
  worker.join();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::stringstream printed;
  printed << std::ifstream(captured).rdbuf();
  EXPECT_EQ(printed.str(), "");
  EXPECT_NE(onMain.find("No such file or directory"), std::string::npos) << onMain;
  EXPECT_EQ(onThread, onMain);
}

} // namespace
} // namespace kdscope::core

namespace kdscope::core {
namespace {

TEST_F(H5FileTest, WriteBlockWritesPartOfARowAndChecksItsBounds) {
  H5File f(m_path, H5File::Mode::Create);
  f.createDataset("/x", H5Type::Float32, {3, 10}, false, 1, true);
  const std::vector<float> block{1, 2, 3, 4, 5};
  f.writeBlock("/x", {1, 2}, {1, 5}, block.data());
  f.createDataset("/h", H5Type::Float16, {2, 4}, false, 0, true);
  const std::vector<float> halves{0.5f, 1.0f / 3.0f};
  f.writeBlock("/h", {1, 1}, {1, 2}, halves.data());
  f.createDataset("/i", H5Type::Int64, {2, 3});
  const std::vector<std::int64_t> ints{7, -8};
  f.writeBlock("/i", {0, 1}, {2, 1}, ints.data());
  EXPECT_EQ(messageOf<JobError>([&] {
              f.writeBlock("/x", {2, 8}, {1, 5}, block.data());
            }),
            m_path + ": /x: cannot write the block at [2, 8] of size [1, 5]: the dataset has shape [3, 10]");
  EXPECT_EQ(messageOf<JobError>([&] { f.writeBlock("/x", {0}, {5}, block.data()); }),
            m_path + ": /x: cannot write a block of rank 1 into a dataset of shape [3, 10]");

  const std::vector<float> x = f.readFloat("/x");
  for (std::size_t i = 0; i < x.size(); ++i) {
    const bool written = i >= 12 && i < 17;
    if (written) {
      EXPECT_EQ(x[i], static_cast<float>(i - 11)) << i;
    } else {
      EXPECT_TRUE(std::isnan(x[i])) << i;
    }
  }
  const std::vector<float> h = f.readFloat("/h");
  EXPECT_EQ(h[5], 0.5f);
  EXPECT_EQ(h[6], 0.333251953125f) << "1/3 rounded to the nearest half";
  EXPECT_EQ(f.readInt64("/i"), (std::vector<std::int64_t>{0, 7, 0, 0, -8, 0}));
}

TEST_F(H5FileTest, ReadsLargerThanTheFileCanHoldAreRefusedBeforeAllocating) {
  {
    H5File f(m_path, H5File::Mode::Create);
    // 2^40 rows, never written: what a corrupt or lying header looks like to a reader.
    f.createDataset("/huge", H5Type::Int64, {std::uint64_t{1} << 40}, false, 1024, true);
    f.createDataset("/wide", H5Type::Float32, {2, std::uint64_t{1} << 61}, false, 1, true);
  }
  const H5File f(m_path, H5File::Mode::ReadOnly);
  const auto size = std::to_string(std::filesystem::file_size(m_path));
  EXPECT_EQ(
      messageOf<InputError>([&] { (void)f.readInt64("/huge"); }),
      m_path +
          ": /huge: has shape [1099511627776]: reading rows 0..1099511627776 needs 8796093022208 bytes, "
          "more than a file of " +
          size + " bytes can hold (its dimensions are corrupt, or the data was never written)");
  EXPECT_EQ(
      messageOf<InputError>([&] { (void)f.readFloat("/wide"); }),
      m_path +
          ": /wide: has shape [2, 2305843009213693952]: its size overflows 64 bits (corrupt dimensions?)");
  // A block of rows is read as usual (unwritten rows hold the fill value).
  EXPECT_EQ(f.readInt64("/huge", 5, 3), (std::vector<std::int64_t>{0, 0, 0}));
}

TEST_F(H5FileTest, FlushReservesSpaceOnDiskAndCloseGivesItBack) {
  std::uint64_t during = 0;
  std::uint64_t allocated = 0;
  {
    H5File f(m_path, H5File::Mode::Create);
    f.writeFloat("/x", {1000}, std::vector<float>(1000, 1.5f), true);
    f.flush();
    allocated = f.allocatedBytes();
    during = std::filesystem::file_size(m_path);
    EXPECT_GE(during, allocated + (256U << 10)) << "the reserve for the next flush";
  }
  const auto after = std::filesystem::file_size(m_path);
  EXPECT_LT(after, during);
  EXPECT_LE(after, allocated + 4096);
  EXPECT_EQ(H5File(m_path, H5File::Mode::ReadOnly).readFloat("/x"), std::vector<float>(1000, 1.5f));
}

/// Lowers this process's file size limit (the soft one; the hard one is left alone, so it
/// can be raised back) and ignores SIGXFSZ, for the scope.
class FileSizeLimit {
public:
  explicit FileSizeLimit(std::uint64_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &m_old);
    m_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = m_old;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &m_old);
    std::signal(SIGXFSZ, m_handler);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

private:
  rlimit m_old{};
  void (*m_handler)(int) = nullptr;
};

TEST_F(H5FileTest, AFailedWriteStopsAllWritesAndTheFileReopensAsItsLastFlushLeftIt) {
  const std::vector<std::int64_t> steps{10, 20, 30};
  {
    H5File f(m_path, H5File::Mode::Create);
    f.setAttr("/", "status", "running");
    f.writeFloat("/kept", {4}, {1, 2, 3, 4}, true);
    f.createDataset("/log", H5Type::Int64, {0}, true, 256);
    f.appendRows("/log", 3, steps.data());
    f.flush();
    const auto flushed = std::filesystem::file_size(m_path);
    std::string message;
    {
      // Random floats do not compress: 64 rows of 16 KiB exceed the limit within a few blocks.
      const FileSizeLimit limit(flushed + (128U << 10));
      f.createDataset("/big", H5Type::Float32, {4096, 4096}, false, 16, true);
      std::mt19937 rng(1);
      std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
      std::vector<float> rows(64 * 4096);
      try {
        for (std::uint64_t r = 0; r < 4096; r += 64) {
          for (auto& v : rows) {
            v = uniform(rng);
          }
          f.writeRows("/big", r, 64, rows.data());
          f.appendRows("/log", 1, steps.data());
          f.flush();
        }
        ADD_FAILURE() << "no write failed";
      } catch (const JobError& e) {
        message = e.what();
      }
      EXPECT_NE(message.find(m_path + ": "), std::string::npos) << message;
      EXPECT_NE(message.find("File too large"), std::string::npos) << message;
      EXPECT_NE(message.find("the file keeps what was recorded up to its last flush"), std::string::npos)
          << message;
      EXPECT_TRUE(f.writeFailed());
      EXPECT_NE(f.writeFailure().find("File too large"), std::string::npos);
      // Nothing more is written, and every change says why.
      EXPECT_NE(messageOf<JobError>([&] {
                  f.setAttr("/", "status", "failed");
                }).find("/: cannot modify: an earlier write failed: File too large"),
                std::string::npos);
      // What the disk still holds is the last flush: reopen it and record the outcome.
      f.reopenAfterWriteFailure();
      EXPECT_FALSE(f.writeFailed());
      f.setAttr("/", "status", "failed");
      f.flush();
    }
  } // closed
  const H5File back(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(back.attrString("/", "status"), "failed");
  EXPECT_EQ(back.readFloat("/kept"), (std::vector<float>{1, 2, 3, 4}));
  const std::vector<std::int64_t> log = back.readInt64("/log");
  ASSERT_GE(log.size(), 3U);
  EXPECT_EQ(std::vector<std::int64_t>(log.begin(), log.begin() + 3), steps);
  if (back.exists("/big")) {
    // Blocks flushed before the failure read back; later ones were never recorded (NaN).
    EXPECT_EQ(back.shape("/big"), (std::vector<std::uint64_t>{4096, 4096}));
    (void)back.readFloat("/big", 0, 64);
  }
}

TEST_F(H5FileTest, WhatAProcessKilledAfterAFlushLeavesIsThatFlush) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      auto* f = new H5File(m_path, H5File::Mode::Create); // never closed: the process dies
      f->writeInt64("/flushed", {3}, {1, 2, 3}, true);
      f->createDataset("/log", H5Type::Float32, {0}, true, 256);
      const std::vector<float> values(100, 0.25f);
      f->appendRows("/log", 100, values.data());
      f->flush();
      // Much more metadata than HDF5's cache holds (2 MiB): by default HDF5 would write some
      // of it before the next flush; KDScope's writer keeps it in memory until then.
      for (int i = 0; i < 1500; ++i) {
        f->writeFloat("/later/d" + std::to_string(i), {2}, {1, 2}, true);
      }
      f->appendRows("/log", 100, values.data());
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(42);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42);
  const H5File f(m_path, H5File::Mode::ReadOnly);
  EXPECT_EQ(f.readInt64("/flushed"), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(f.readFloat("/log"), std::vector<float>(100, 0.25f));
  EXPECT_FALSE(f.exists("/later"));
  EXPECT_EQ(f.children("/"), (std::vector<std::string>{"flushed", "log"}));
}

} // namespace
} // namespace kdscope::core
