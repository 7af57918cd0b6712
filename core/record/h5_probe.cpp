#include <hdf5.h>

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "core/common/error.h"
#include "core/record/h5_file.h"

// HDF5 1.10.8 reads some corrupt files into a crash: SIGSEGV in its metadata decoding, or
// heap corruption that glibc aborts on (12 of 300 randomly corrupted copies of a real run
// file in tests/core/test_crash_bad_files.cpp; half of them crash h5dump too, the others
// only with some heap contents, i.e. reads of memory HDF5 did not initialise). No check of
// ours can foresee which bytes do it, so a child process reads the file's whole structure
// first, with the same library; a child that dies or hangs is the file's fault, reported as
// an InputError, and the calling process never touches the file. See docs/run-format.md.

namespace kdscope::core {

namespace {

// Datasets up to this size are read whole in the child (their chunks decompressed);
// larger ones in their first and last rows only. Chunk indexes are walked in full.
constexpr hssize_t kReadWholeElements = 4 << 20;

void readAttributes(hid_t object) {
  H5O_info_t info{};
  if (H5Oget_info2(object, &info, H5O_INFO_NUM_ATTRS) < 0) {
    return;
  }
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    const hid_t attr = H5Aopen_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0) {
      continue;
    }
    const hid_t type = H5Aget_type(attr);
    const hid_t space = H5Aget_space(attr);
    const hssize_t points = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (type >= 0 && points > 0 && points < (1 << 16)) {
      if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
        const hid_t memType = H5Tcopy(H5T_C_S1);
        H5Tset_size(memType, H5T_VARIABLE);
        std::vector<char*> strings(static_cast<std::size_t>(points), nullptr);
        if (H5Aread(attr, memType, strings.data()) >= 0) {
          H5Dvlen_reclaim(memType, space, H5P_DEFAULT, strings.data());
        }
        H5Tclose(memType);
      } else {
        const std::size_t size = H5Tget_size(type);
        if (size > 0 && size <= 4096) {
          std::vector<unsigned char> buffer(size * static_cast<std::size_t>(points));
          const hid_t memType = H5Tget_native_type(type, H5T_DIR_DEFAULT);
          if (memType >= 0 && H5Tget_size(memType) <= size * 2) {
            buffer.resize(H5Tget_size(memType) * static_cast<std::size_t>(points));
            H5Aread(attr, memType, buffer.data());
          }
          if (memType >= 0) {
            H5Tclose(memType);
          }
        }
      }
    }
    if (space >= 0) {
      H5Sclose(space);
    }
    if (type >= 0) {
      H5Tclose(type);
    }
    H5Aclose(attr);
  }
}

void readRows(hid_t dataset, hid_t memType, hid_t space, int rank, const std::vector<hsize_t>& dims, hsize_t first,
              hsize_t rows, std::size_t elementBytes) {
  std::vector<hsize_t> start(static_cast<std::size_t>(rank), 0);
  std::vector<hsize_t> count = dims;
  start[0] = first;
  count[0] = rows;
  hsize_t elements = 1;
  for (const hsize_t c : count) {
    elements *= c;
  }
  if (elements == 0 || elements > static_cast<hsize_t>(kReadWholeElements)) {
    return;
  }
  const hid_t fileSpace = H5Scopy(space);
  H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  const hid_t memSpace = H5Screate_simple(rank, count.data(), nullptr);
  std::vector<unsigned char> buffer(static_cast<std::size_t>(elements) * elementBytes);
  H5Dread(dataset, memType, memSpace, fileSpace, H5P_DEFAULT, buffer.data());
  H5Sclose(memSpace);
  H5Sclose(fileSpace);
}

void readDataset(hid_t dataset) {
  const hid_t type = H5Dget_type(dataset);
  const hid_t space = H5Dget_space(dataset);
  const hid_t dcpl = H5Dget_create_plist(dataset);
  if (type < 0 || space < 0) {
    return;
  }
  if (dcpl >= 0) {
    const int filters = H5Pget_nfilters(dcpl);
    for (int i = 0; i < filters && i < 32; ++i) {
      unsigned flags = 0;
      std::size_t elements = 8;
      unsigned values[8];
      H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &elements, values, 0, nullptr, nullptr);
    }
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      hsize_t chunks = 0;
      H5Dget_num_chunks(dataset, space, &chunks); // walks the whole chunk index
    }
    H5Pclose(dcpl);
  }
  const int rank = H5Sget_simple_extent_ndims(space);
  const hssize_t points = H5Sget_simple_extent_npoints(space);
  if (rank >= 1 && rank <= H5S_MAX_RANK && points > 0) {
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
      if (points <= kReadWholeElements) {
        const hid_t memType = H5Tcopy(H5T_C_S1);
        H5Tset_size(memType, H5T_VARIABLE);
        std::vector<char*> strings(static_cast<std::size_t>(points), nullptr);
        if (H5Dread(dataset, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, strings.data()) >= 0) {
          H5Dvlen_reclaim(memType, space, H5P_DEFAULT, strings.data());
        }
        H5Tclose(memType);
      }
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
      const hid_t memType = cls == H5T_FLOAT ? H5T_NATIVE_DOUBLE : H5T_NATIVE_LLONG;
      if (points <= kReadWholeElements) {
        readRows(dataset, memType, space, rank, dims, 0, dims[0], 8);
      } else {
        readRows(dataset, memType, space, rank, dims, 0, 1, 8);
        readRows(dataset, memType, space, rank, dims, dims[0] - 1, 1, 8);
      }
    }
  }
  H5Sclose(space);
  H5Tclose(type);
}

/// Walks a group's links by hand rather than with H5Ovisit: H5Ovisit stops at the first
/// object it cannot read (a bad checksum), which would leave the rest of the file unchecked
/// while the readers go on to open it (bench/fuzz.sh found such a file: the visit stopped
/// early, and a name lookup in a later group crashed HDF5 in the calling process). Each
/// group is also searched by name, for each of its links and for a name it does not have,
/// as the readers' H5Lexists and H5Oopen do (a different path through the link index than
/// the listing). Hard links only; objects already seen (by address) are not entered again.
void walkGroup(hid_t group, std::vector<haddr_t>& seen, int depth) {
  if (depth > 64) {
    return;
  }
  H5Lexists(group, "kdscope-probe: no such link", H5P_DEFAULT);
  H5G_info_t info{};
  if (H5Gget_info(group, &info) < 0) {
    return;
  }
  for (hsize_t i = 0; i < info.nlinks && i < (1U << 20); ++i) {
    char name[1024];
    // Creation-order listing reads the group's other index (KDScope lists by it).
    H5Lget_name_by_idx(group, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
    const ssize_t length =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
    if (length <= 0 || static_cast<std::size_t>(length) >= sizeof name) {
      continue;
    }
    H5L_info_t link{};
    if (H5Lexists(group, name, H5P_DEFAULT) <= 0 || H5Lget_info(group, name, &link, H5P_DEFAULT) < 0 ||
        link.type != H5L_TYPE_HARD) {
      continue;
    }
    const hid_t object = H5Oopen(group, name, H5P_DEFAULT);
    if (object < 0) {
      continue;
    }
    H5O_info_t objectInfo{};
    if (H5Oget_info2(object, &objectInfo, H5O_INFO_BASIC) >= 0 &&
        std::find(seen.begin(), seen.end(), objectInfo.addr) == seen.end()) {
      seen.push_back(objectInfo.addr);
      readAttributes(object);
      if (objectInfo.type == H5O_TYPE_DATASET) {
        readDataset(object);
      } else if (objectInfo.type == H5O_TYPE_GROUP) {
        walkGroup(object, seen, depth + 1);
      }
    }
    H5Oclose(object);
  }
}

/// In the child: everything the readers of core/record and the views may touch.
void walk(const char* path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path) <= 0) {
    return;
  }
  const hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    return;
  }
  const hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
  if (root >= 0) {
    readAttributes(root);
    std::vector<haddr_t> seen;
    walkGroup(root, seen, 0);
    H5Gclose(root);
  }
  H5Fclose(file);
}

} // namespace

namespace {

std::uint64_t readLittle(const unsigned char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    value = (value << 8U) | p[i];
  }
  return value;
}

/// HDF5 1.10.8 keeps variable-length strings in global heap collections ("GCOL") and copies
/// an object by the size its header states without checking that it lies inside the
/// collection (H5HG_read), so one flipped bit in a size reads past the collection's memory:
/// a SIGSEGV that depends on the heap's layout, so the child below may survive a read that
/// kills the parent (found by bench/fuzz.sh: a vocabulary dataset and an objective
/// attribute). Checked here on the file's bytes, without HDF5: every collection (signature,
/// version 1, zero reserved bytes, at least the 4096 bytes HDF5 allocates, 8-byte lengths as
/// KDScope and h5py write them) must hold each object's header and data inside its size.
/// Random bytes pass as a collection header with odds of 2^-64 per offset, so a valid file
/// is not refused by a chance match.
void checkGlobalHeapCollections(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return; // the open that follows reports it
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 32) {
    ::close(fd);
    return;
  }
  const auto fileSize = static_cast<std::size_t>(st.st_size);
  void* mapped = ::mmap(nullptr, fileSize, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) {
    return;
  }
  const auto* bytes = static_cast<const unsigned char*>(mapped);
  std::string problem;
  constexpr std::size_t kHeader = 16;   // "GCOL", version, 3 reserved, 8-byte collection size
  constexpr std::size_t kObject = 16;   // index, reference count, 4 reserved, 8-byte size
  constexpr std::uint64_t kMinCollection = 4096;
  for (std::size_t at = 0; problem.empty() && at + kHeader <= fileSize;) {
    const void* hit = ::memmem(bytes + at, fileSize - at, "GCOL", 4);
    if (hit == nullptr) {
      break;
    }
    const auto o = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - bytes);
    at = o + 1;
    if (o + kHeader > fileSize || bytes[o + 4] != 1 || bytes[o + 5] != 0 || bytes[o + 6] != 0 || bytes[o + 7] != 0) {
      continue;
    }
    const std::uint64_t size = readLittle(bytes + o + 8, 8);
    if (size < kMinCollection) {
      continue;
    }
    if (size > fileSize - o) {
      problem = "the global heap collection at byte " + std::to_string(o) + " claims " + std::to_string(size) +
                " bytes, past the end of the file";
      break;
    }
    const std::size_t end = o + static_cast<std::size_t>(size);
    for (std::size_t p = o + kHeader; p + kObject <= end;) {
      const auto index = readLittle(bytes + p, 2);
      const std::uint64_t objectSize = readLittle(bytes + p + 8, 8);
      if (index == 0) {
        break; // free space: the rest of the collection
      }
      const std::uint64_t need = kObject + ((objectSize + 7U) & ~std::uint64_t{7});
      if (objectSize > size || need > end - p) {
        problem = "object " + std::to_string(index) + " of the global heap collection at byte " + std::to_string(o) +
                  " claims " + std::to_string(objectSize) + " bytes, past the collection's end";
        break;
      }
      p += static_cast<std::size_t>(need);
    }
  }
  ::munmap(mapped, fileSize);
  if (!problem.empty()) {
    throw InputError(path + ": the file is corrupt: " + problem +
                     " (its variable-length strings cannot be read safely); KDScope refused it");
  }
}

} // namespace

void probeHdf5File(const std::string& path, int timeoutSeconds) {
  checkGlobalHeapCollections(path);
  pid_t child = -1;
  {
    // No other thread is inside HDF5 while the process forks: the child uses the library
    // without taking the mutex (its copy stays locked), and leaves with _exit.
    const std::lock_guard<std::mutex> lock(hdf5Mutex());
    child = ::fork();
    if (child == 0) {
      // Fill every block malloc hands out (and frees) with a fixed byte: HDF5 code that
      // uses a field a corrupt message left unset (e.g. frees a link name its decoder never
      // wrote: fuzz file 06189) then crashes here every time, instead of only when the
      // parent's heap happens to hold a bad value there.
      ::mallopt(M_PERTURB, 0xA5);
      try {
        walk(path.c_str());
      } catch (...) { // an allocation the corrupt sizes asked for: not a crash of HDF5
      }
      ::_exit(0);
    }
  }
  if (child < 0) {
    return; // cannot fork (no memory, process limit): read without the check
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  auto pause = std::chrono::microseconds(200);
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) {
      break;
    }
    if (done < 0 && errno != EINTR) {
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      throw InputError(path + ": reading the file's structure did not finish within " +
                       std::to_string(timeoutSeconds) + " s; the file is corrupt (KDScope refused it)");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  if (WIFSIGNALED(status)) {
    throw InputError(path + ": the file is corrupt: the HDF5 library crashed reading its structure (" +
                     std::string(::strsignal(WTERMSIG(status))) +
                     " in a separate test process); KDScope refused it");
  }
  // The child exits 0 whatever HDF5 says; anything else is a crash that a handler turned
  // into an exit (AddressSanitizer reports a SEGV and exits 1).
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    throw InputError(path + ": the file is corrupt: the HDF5 library crashed reading its structure (exit code " +
                     std::to_string(WEXITSTATUS(status)) + " of a separate test process); KDScope refused it");
  }
}

} // namespace kdscope::core
