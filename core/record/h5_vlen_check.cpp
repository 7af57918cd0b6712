#include "core/record/h5_vlen_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "core/common/error.h"

// HDF5 1.10.8 stores each element of a variable-length string dataset as a descriptor
// (4-byte length, 8-byte global heap collection address, 4-byte object index) and, reading
// it, indexes the collection's object table with the stored index without a bounds check
// (H5HG_read asserts it only in debug builds). A descriptor whose index names no object of
// its collection therefore reads a wild pointer: a SIGSEGV whose occurrence depends on the
// heap's layout, so the structure probe's child (h5_probe.cpp) can survive a read that then
// kills the window (found by bench/fuzz.sh, file 01583: one flipped bit in
// /tasks/polarity/vocab). This check reads the descriptors' bytes itself, without HDF5's
// conversion: for contiguous storage from the file, for chunked storage chunk by chunk
// through H5Dread_chunk (undoing shuffle and deflate, the filters KDScope and h5py use),
// and checks every non-empty descriptor against the collection's bytes in the file.

namespace kdscope::core::detail {

namespace {

constexpr std::size_t kDescriptor = 16; // 4-byte length, 8-byte address, 4-byte index

std::uint64_t little(const unsigned char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    value = (value << 8U) | p[i];
  }
  return value;
}

struct Closer {
  int fd = -1;
  ~Closer() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

/// One global heap collection as the file's bytes describe it: the indices of its objects
/// and their sizes, or empty when the bytes at the address are not a collection.
struct Collection {
  bool valid = false;
  std::map<std::uint64_t, std::uint64_t> objects; // index -> size
};

Collection readCollection(int fd, std::uint64_t address, std::uint64_t fileSize) {
  Collection out;
  constexpr std::uint64_t kHeader = 16;
  constexpr std::uint64_t kObject = 16;
  if (address >= fileSize || fileSize - address < kHeader) {
    return out;
  }
  unsigned char header[kHeader];
  if (::pread(fd, header, kHeader, static_cast<off_t>(address)) != static_cast<ssize_t>(kHeader) ||
      std::memcmp(header, "GCOL", 4) != 0 || header[4] != 1) {
    return out;
  }
  const std::uint64_t size = little(header + 8, 8);
  if (size < kHeader || size > fileSize - address || size > (std::uint64_t{1} << 30)) {
    return out;
  }
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  if (::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(address)) != static_cast<ssize_t>(bytes.size())) {
    return out;
  }
  for (std::uint64_t p = kHeader; p + kObject <= size;) {
    const std::uint64_t index = little(bytes.data() + p, 2);
    const std::uint64_t objectSize = little(bytes.data() + p + 8, 8);
    if (index == 0) {
      break; // free space: the rest of the collection
    }
    const std::uint64_t padded = (objectSize + 7U) & ~std::uint64_t{7};
    if (objectSize > size || padded > size - p - kObject) {
      return out; // an object past the collection's end: not a collection HDF5 can read
    }
    out.objects[index] = objectSize;
    p += kObject + padded;
  }
  out.valid = true;
  return out;
}

/// The raw (filtered) bytes of one chunk back to element bytes. False when a filter is not
/// one this check undoes.
bool unfilter(std::vector<unsigned char>& data, unsigned mask, const std::vector<H5Z_filter_t>& filters,
              std::size_t expected) {
  for (std::size_t i = filters.size(); i-- > 0;) {
    if ((mask & (1U << i)) != 0) {
      continue; // skipped for this chunk
    }
    switch (filters[i]) {
    case H5Z_FILTER_FLETCHER32:
      if (data.size() < 4) {
        return false;
      }
      data.resize(data.size() - 4);
      break;
    case H5Z_FILTER_DEFLATE: {
      std::vector<unsigned char> out(expected);
      uLongf outSize = static_cast<uLongf>(out.size());
      if (::uncompress(out.data(), &outSize, data.data(), static_cast<uLong>(data.size())) != Z_OK) {
        return false; // HDF5's own read reports the broken chunk
      }
      out.resize(outSize);
      data.swap(out);
      break;
    }
    case H5Z_FILTER_SHUFFLE: {
      const std::size_t elements = data.size() / kDescriptor;
      std::vector<unsigned char> out(data);
      for (std::size_t b = 0; b < kDescriptor; ++b) {
        for (std::size_t e = 0; e < elements; ++e) {
          out[e * kDescriptor + b] = data[b * elements + e];
        }
      }
      data.swap(out);
      break;
    }
    default:
      return false;
    }
  }
  return true;
}

} // namespace

/// The file's bytes and the collections read so far, for checking descriptors.
class DescriptorChecker {
public:
  /// False when the file's layout is not one this check reads (address size, no file).
  bool open(hid_t object, const std::string& filePath) {
    m_path = filePath;
    const hid_t fileId = H5Iget_file_id(object);
    if (fileId < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    std::size_t sizeofAddr = 0;
    std::size_t sizeofSize = 0;
    const hid_t fcpl = H5Fget_create_plist(fileId);
    if (fcpl >= 0) {
      H5Pget_userblock(fcpl, &m_userblock);
      H5Pget_sizes(fcpl, &sizeofAddr, &sizeofSize);
      H5Pclose(fcpl);
    }
    H5Fclose(fileId);
    H5Eclear2(H5E_DEFAULT);
    if (sizeofAddr != 8 || sizeofSize != 8) {
      return false; // descriptors of another address size: not a layout this check reads
    }
    m_file.fd = ::open(filePath.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (m_file.fd < 0 || ::fstat(m_file.fd, &st) != 0) {
      return false;
    }
    m_fileSize = static_cast<std::uint64_t>(st.st_size);
    return true;
  }

  [[nodiscard]] int fd() const { return m_file.fd; }
  [[nodiscard]] std::uint64_t fileSize() const { return m_fileSize; }
  [[nodiscard]] std::uint64_t userblock() const { return m_userblock; }

  /// `count` descriptors at `bytes`, numbered from `first`; throws naming `what`.
  void check(const unsigned char* bytes, std::size_t count, std::uint64_t first, const std::string& what) {
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t element = first + i;
      const unsigned char* d = bytes + i * kDescriptor;
      const std::uint64_t length = little(d, 4);
      const std::uint64_t address = little(d + 4, 8);
      const std::uint64_t index = little(d + 12, 4);
      if (length == 0 && address == 0) {
        continue; // an empty or null string: no heap object
      }
      auto found = m_collections.find(address);
      if (found == m_collections.end()) {
        found = m_collections.emplace(address, readCollection(m_file.fd, address + m_userblock, m_fileSize)).first;
      }
      const Collection& c = found->second;
      std::string problem;
      if (!c.valid) {
        problem = "points to byte " + std::to_string(address) + ", which holds no global heap collection";
      } else if (c.objects.count(index) == 0) {
        problem = "names object " + std::to_string(index) + " of the global heap collection at byte " +
                  std::to_string(address) + ", which holds no such object";
      } else if (c.objects.at(index) < length) {
        problem = "claims " + std::to_string(length) + " bytes, but its global heap object holds " +
                  std::to_string(c.objects.at(index));
      }
      if (!problem.empty()) {
        throw InputError(m_path + ": " + what + ": the file is corrupt: string " + std::to_string(element) + " " +
                         problem + " (KDScope refused to read it)");
      }
    }
  }

private:
  std::string m_path;
  Closer m_file;
  std::uint64_t m_fileSize = 0;
  hsize_t m_userblock = 0;
  std::map<std::uint64_t, Collection> m_collections;
};

void checkVlenDescriptors(hid_t dataset, const std::string& filePath, const std::string& objectPath) {
  DescriptorChecker checker;
  if (!checker.open(dataset, filePath)) {
    return;
  }
  const std::uint64_t userblock = checker.userblock();
  const std::uint64_t fileSize = checker.fileSize();
  const auto checkBytes = [&](const unsigned char* bytes, std::size_t count, std::uint64_t first) {
    checker.check(bytes, count, first, objectPath);
  };

  const hid_t dcpl = H5Dget_create_plist(dataset);
  if (dcpl < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  std::vector<H5Z_filter_t> filters;
  const int nFilters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nFilters; ++i) {
    unsigned flags = 0;
    std::size_t cdNelmts = 0;
    unsigned config = 0;
    filters.push_back(H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &cdNelmts, nullptr, 0, nullptr, &config));
  }
  // Elements per chunk come from the chunk's shape (chunked layout only).
  std::vector<hsize_t> chunkDims(H5S_MAX_RANK);
  const int rank = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5S_MAX_RANK, chunkDims.data()) : -1;
  H5Pclose(dcpl);

  const hid_t space = H5Dget_space(dataset);
  const hssize_t points = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  if (layout == H5D_CONTIGUOUS) {
    if (space >= 0) {
      H5Sclose(space);
    }
    const haddr_t offset = H5Dget_offset(dataset);
    if (offset == HADDR_UNDEF || points <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return; // never written: HDF5 reads fill values
    }
    const std::uint64_t bytes = static_cast<std::uint64_t>(points) * kDescriptor;
    if (offset + userblock > fileSize || bytes > fileSize - offset - userblock) {
      return; // HDF5's own read reports the short file
    }
    std::vector<unsigned char> data(static_cast<std::size_t>(bytes));
    if (::pread(checker.fd(), data.data(), data.size(), static_cast<off_t>(offset + userblock)) !=
        static_cast<ssize_t>(data.size())) {
      return;
    }
    checkBytes(data.data(), static_cast<std::size_t>(points), 0);
    return;
  }
  if (layout != H5D_CHUNKED || space < 0) {
    if (space >= 0) {
      H5Sclose(space);
    }
    H5Eclear2(H5E_DEFAULT);
    return; // compact storage: descriptors in the object header, not checked
  }
  hsize_t chunks = 0;
  if (H5Dget_num_chunks(dataset, space, &chunks) < 0) {
    H5Sclose(space);
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  if (rank <= 0) {
    H5Sclose(space);
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  std::uint64_t perChunk = 1;
  for (int d = 0; d < rank; ++d) {
    perChunk *= chunkDims[static_cast<std::size_t>(d)];
  }
  const std::uint64_t chunkBytes = perChunk * kDescriptor;
  if (perChunk == 0 || chunkBytes > (std::uint64_t{1} << 30)) {
    H5Sclose(space);
    return;
  }
  hsize_t extent0 = 0;
  if (rank == 1) {
    H5Sget_simple_extent_dims(space, &extent0, nullptr);
  }
  for (hsize_t c = 0; c < chunks; ++c) {
    std::vector<hsize_t> chunkOffset(static_cast<std::size_t>(rank));
    unsigned mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t stored = 0;
    if (H5Dget_chunk_info(dataset, space, c, chunkOffset.data(), &mask, &address, &stored) < 0 || stored == 0 ||
        stored > fileSize) {
      H5Eclear2(H5E_DEFAULT);
      continue; // HDF5's own read reports it
    }
    std::vector<unsigned char> data(static_cast<std::size_t>(stored));
    std::uint32_t filterMask = 0;
    if (H5Dread_chunk(dataset, H5P_DEFAULT, chunkOffset.data(), &filterMask, data.data()) < 0) {
      H5Eclear2(H5E_DEFAULT);
      continue;
    }
    if (!unfilter(data, filterMask, filters, static_cast<std::size_t>(chunkBytes))) {
      continue; // a filter this check does not undo, or a broken chunk HDF5 will report
    }
    // Elements of the last chunk past the dataset's extent are never read by HDF5: for a
    // one-dimensional dataset (every string dataset KDScope writes) only those inside are
    // checked, and elements are numbered as in the dataset.
    std::size_t count = std::min<std::size_t>(data.size() / kDescriptor, static_cast<std::size_t>(perChunk));
    std::uint64_t first = 0;
    if (rank == 1) {
      first = chunkOffset[0];
      count = static_cast<std::size_t>(std::min<std::uint64_t>(count, extent0 > first ? extent0 - first : 0));
    }
    checkBytes(data.data(), count, first);
  }
  H5Sclose(space);
}

} // namespace kdscope::core::detail

// ---- Attributes ------------------------------------------------------------------------------
//
// A variable-length string attribute keeps its descriptors inside its object header's
// attribute message, which HDF5 converts without a check as above (fuzz files 06378 and
// 06881: a model's `objective`, the root's `status`). The object header is read here from
// the file's bytes (version 1, as KDScope and h5py write by default, and version 2 "OHDR"
// with its "OCHK" continuation chunks); attributes in dense storage (a fractal heap, used
// beyond 8 attributes with the newest file format) are not checked.

namespace kdscope::core::detail {

namespace {

struct Region {
  std::uint64_t at = 0;   // absolute file offset of the first message
  std::uint64_t size = 0; // bytes of messages
};

constexpr std::uint16_t kAttributeMessage = 0x000C;
constexpr std::uint16_t kContinuationMessage = 0x0010;
constexpr int kMaxRegions = 64;

std::uint64_t pad8(std::uint64_t n) { return (n + 7U) & ~std::uint64_t{7}; }

/// The descriptors of attribute `name` in one attribute message, or false when the message
/// is another attribute or not one this check can read.
bool attributeData(const std::vector<unsigned char>& m, const std::string& name, std::size_t& offset,
                   std::size_t& count) {
  if (m.size() < 9) {
    return false;
  }
  const unsigned version = m[0];
  if (version < 1 || version > 3 || (version >= 2 && (m[1] & 0x03U) != 0)) {
    return false; // unknown version, or a shared datatype or dataspace
  }
  const std::uint64_t nameSize = little(m.data() + 2, 2);
  const std::uint64_t typeSize = little(m.data() + 4, 2);
  const std::uint64_t spaceSize = little(m.data() + 6, 2);
  std::uint64_t p = version == 3 ? 9 : 8;
  const auto advance = [&](std::uint64_t n) { return version == 1 ? pad8(n) : n; };
  if (nameSize == 0 || p + advance(nameSize) > m.size()) {
    return false;
  }
  const std::string stored(reinterpret_cast<const char*>(m.data() + p), static_cast<std::size_t>(nameSize - 1));
  if (stored != name) {
    return false;
  }
  p += advance(nameSize);
  if (typeSize < 8 || p + advance(typeSize) > m.size()) {
    return false;
  }
  const unsigned char* type = m.data() + p;
  const bool vlenString = (type[0] & 0x0FU) == 9 && (type[1] & 0x0FU) == 1 && little(type + 4, 4) == kDescriptor;
  if (!vlenString) {
    return false;
  }
  p += advance(typeSize);
  if (spaceSize < 4 || p + advance(spaceSize) > m.size()) {
    return false;
  }
  const unsigned char* space = m.data() + p;
  const unsigned spaceVersion = space[0];
  const unsigned rank = space[1];
  std::uint64_t dims = 0;
  std::uint64_t elements = 1;
  if (spaceVersion == 1) {
    dims = 8;
  } else if (spaceVersion == 2) {
    dims = 4;
    if (space[3] == 2) {
      elements = 0; // a null dataspace
    }
  } else {
    return false;
  }
  if (rank > 32 || dims + 8ULL * rank > spaceSize) {
    return false;
  }
  for (unsigned d = 0; d < rank; ++d) {
    const std::uint64_t extent = little(space + dims + 8ULL * d, 8);
    if (extent != 0 && elements > (std::uint64_t{1} << 32) / extent) {
      return false;
    }
    elements *= extent;
  }
  p += advance(spaceSize);
  if (elements * kDescriptor > m.size() - p) {
    return false; // HDF5's own read reports the short message
  }
  offset = static_cast<std::size_t>(p);
  count = static_cast<std::size_t>(elements);
  return true;
}

bool readAt(int fd, std::uint64_t at, std::uint64_t size, std::vector<unsigned char>& out) {
  out.resize(static_cast<std::size_t>(size));
  return size == 0 || ::pread(fd, out.data(), out.size(), static_cast<off_t>(at)) == static_cast<ssize_t>(size);
}

} // namespace

void checkVlenAttributeDescriptors(hid_t object, const std::string& name, const std::string& filePath,
                                   const std::string& objectPath) {
  H5O_info_t info{};
  if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  DescriptorChecker checker;
  if (!checker.open(object, filePath)) {
    return;
  }
  const int fd = checker.fd();
  const std::uint64_t base = checker.userblock();
  const std::uint64_t fileSize = checker.fileSize();
  const std::uint64_t header = info.addr + base;
  std::vector<unsigned char> prefix;
  if (header >= fileSize || !readAt(fd, header, std::min<std::uint64_t>(64, fileSize - header), prefix) ||
      prefix.size() < 16) {
    return;
  }
  bool v2 = false;
  bool creationOrder = false;
  std::vector<Region> regions;
  if (std::memcmp(prefix.data(), "OHDR", 4) == 0) {
    v2 = true;
    const unsigned flags = prefix[5];
    std::size_t p = 6;
    if ((flags & 0x20U) != 0) {
      p += 16;
    }
    if ((flags & 0x10U) != 0) {
      p += 4;
    }
    creationOrder = (flags & 0x04U) != 0;
    const int width = 1 << (flags & 0x03U);
    if (p + static_cast<std::size_t>(width) > prefix.size()) {
      return;
    }
    const std::uint64_t size = little(prefix.data() + p, width);
    regions.push_back({header + p + static_cast<std::uint64_t>(width), size});
  } else if (prefix[0] == 1) {
    regions.push_back({header + 16, little(prefix.data() + 8, 4)});
  } else {
    return;
  }
  const std::size_t messageHeader = v2 ? (creationOrder ? 6U : 4U) : 8U;
  for (std::size_t r = 0; r < regions.size() && r < kMaxRegions; ++r) {
    const Region region = regions[r];
    std::vector<unsigned char> bytes;
    if (region.at >= fileSize || region.size > fileSize - region.at || region.size > (std::uint64_t{1} << 24) ||
        !readAt(fd, region.at, region.size, bytes)) {
      return; // HDF5's own read reports the broken header
    }
    for (std::size_t p = 0; p + messageHeader <= bytes.size();) {
      const std::uint16_t type = static_cast<std::uint16_t>(v2 ? bytes[p] : little(bytes.data() + p, 2));
      const std::uint64_t size = v2 ? little(bytes.data() + p + 1, 2) : little(bytes.data() + p + 2, 2);
      const std::size_t data = p + messageHeader;
      if (size > bytes.size() - data) {
        break; // the gap at a v2 chunk's end, or damage HDF5 reports itself
      }
      if (type == kContinuationMessage && size >= 16) {
        const std::uint64_t at = little(bytes.data() + data, 8) + base;
        const std::uint64_t length = little(bytes.data() + data + 8, 8);
        if (v2) {
          if (length > 8) {
            regions.push_back({at + 4, length - 8}); // "OCHK" ... checksum
          }
        } else {
          regions.push_back({at, length});
        }
      } else if (type == kAttributeMessage) {
        const std::vector<unsigned char> message(bytes.begin() + static_cast<std::ptrdiff_t>(data),
                                                 bytes.begin() + static_cast<std::ptrdiff_t>(data + size));
        std::size_t offset = 0;
        std::size_t count = 0;
        if (attributeData(message, name, offset, count)) {
          checker.check(message.data() + offset, count, 0, objectPath + ": attribute '" + name + "'");
          return;
        }
      }
      p = data + static_cast<std::size_t>(size);
    }
  }
}

} // namespace kdscope::core::detail
