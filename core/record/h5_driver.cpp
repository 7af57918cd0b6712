#include "core/record/h5_driver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kdscope::core::detail {

struct DriverFile {
  H5FD_t pub; // HDF5's part; must come first (HDF5 hands back this pointer)
  int fd = -1;
  haddr_t eoa = 0; ///< end of HDF5's allocated space
  haddr_t eof = 0; ///< size of the file on disk, as this driver made it
  dev_t device = 0;
  ino_t inode = 0;
  WriteGuard* guard = nullptr;
};

namespace {

struct DriverConfig {
  WriteGuard* guard;
};

// pread/pwrite take off_t: addresses above this cannot be reached.
constexpr haddr_t kMaxAddress = (haddr_t{1} << (8 * sizeof(off_t) - 1)) - 1;

void pushError(const char* function, hid_t minor, const std::string& message) {
  H5Epush2(H5E_DEFAULT, __FILE__, function, __LINE__, H5E_ERR_CLS, H5E_VFL, minor, "%s", message.c_str());
}

/// Remembers the first failure; from now on the guard drops every write.
void recordFailure(WriteGuard* guard, int error, const std::string& action) {
  if (guard != nullptr && guard->error == 0) {
    guard->error = error;
    guard->failedAction = action;
  }
  if (guard != nullptr) {
    guard->discard = true;
  }
}

DriverFile* asFile(H5FD_t* file) { return reinterpret_cast<DriverFile*>(file); }
const DriverFile* asFile(const H5FD_t* file) { return reinterpret_cast<const DriverFile*>(file); }

void* faplGet(H5FD_t* file) {
  auto* config = static_cast<DriverConfig*>(std::malloc(sizeof(DriverConfig)));
  if (config != nullptr) {
    config->guard = asFile(file)->guard;
  }
  return config;
}

void* faplCopy(const void* fapl) {
  auto* config = static_cast<DriverConfig*>(std::malloc(sizeof(DriverConfig)));
  if (config != nullptr) {
    std::memcpy(config, fapl, sizeof(DriverConfig));
  }
  return config;
}

herr_t faplFree(void* fapl) {
  std::free(fapl);
  return 0;
}

H5FD_t* open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if (name == nullptr || *name == '\0' || maxaddr == 0 || maxaddr > kMaxAddress) {
    pushError(__func__, H5E_BADVALUE, "invalid file name or address space");
    return nullptr;
  }
  const auto* config = static_cast<const DriverConfig*>(H5Pget_driver_info(fapl));
  int oflags = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
  if (flags & H5F_ACC_TRUNC) {
    oflags |= O_TRUNC;
  }
  if (flags & H5F_ACC_CREAT) {
    oflags |= O_CREAT;
  }
  if (flags & H5F_ACC_EXCL) {
    oflags |= O_EXCL;
  }
  const int fd = ::open(name, oflags | O_CLOEXEC, 0666);
  if (fd < 0) {
    pushError(__func__, H5E_CANTOPENFILE, std::string("unable to open '") + name + "': " + std::strerror(errno));
    return nullptr;
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    pushError(__func__, H5E_BADFILE, std::string("unable to stat '") + name + "': " + std::strerror(error));
    return nullptr;
  }
  auto* file = new (std::nothrow) DriverFile{};
  if (file == nullptr) {
    ::close(fd);
    pushError(__func__, H5E_CANTOPENFILE, "out of memory");
    return nullptr;
  }
  file->fd = fd;
  file->eof = static_cast<haddr_t>(info.st_size);
  file->device = info.st_dev;
  file->inode = info.st_ino;
  file->guard = config != nullptr ? config->guard : nullptr;
  if (file->guard != nullptr) {
    file->guard->file = file;
  }
  return &file->pub;
}

herr_t close(H5FD_t* base) {
  DriverFile* file = asFile(base);
  herr_t status = 0;
  if (::close(file->fd) != 0 && (file->guard == nullptr || !file->guard->discard)) {
    pushError(__func__, H5E_CANTCLOSEFILE, std::string("unable to close the file: ") + std::strerror(errno));
    status = -1;
  }
  if (file->guard != nullptr && file->guard->file == file) {
    file->guard->file = nullptr;
  }
  delete file;
  return status;
}

int compare(const H5FD_t* a, const H5FD_t* b) {
  const DriverFile* f1 = asFile(a);
  const DriverFile* f2 = asFile(b);
  if (f1->device != f2->device) {
    return f1->device < f2->device ? -1 : 1;
  }
  if (f1->inode != f2->inode) {
    return f1->inode < f2->inode ? -1 : 1;
  }
  return 0;
}

herr_t query(const H5FD_t* /*file*/, unsigned long* flags) {
  // As sec2: metadata and small raw data are aggregated and accumulated, contiguous data
  // sieved; the handle is a POSIX descriptor (get_handle gives an int*).
  if (flags != nullptr) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
  }
  return 0;
}

haddr_t getEoa(const H5FD_t* file, H5FD_mem_t /*type*/) { return asFile(file)->eoa; }

herr_t setEoa(H5FD_t* file, H5FD_mem_t /*type*/, haddr_t address) {
  asFile(file)->eoa = address;
  return 0;
}

haddr_t getEof(const H5FD_t* file, H5FD_mem_t /*type*/) { return asFile(file)->eof; }

herr_t getHandle(H5FD_t* file, hid_t /*fapl*/, void** handle) {
  if (handle == nullptr) {
    pushError(__func__, H5E_BADVALUE, "no handle pointer");
    return -1;
  }
  *handle = &asFile(file)->fd;
  return 0;
}

herr_t read(H5FD_t* base, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t address, size_t size, void* buffer) {
  DriverFile* file = asFile(base);
  if (address > kMaxAddress || size > kMaxAddress - address) {
    pushError(__func__, H5E_OVERFLOW, "read beyond the addressable space");
    return -1;
  }
  auto* out = static_cast<unsigned char*>(buffer);
  auto offset = static_cast<off_t>(address);
  while (size > 0) {
    const ssize_t n = ::pread(file->fd, out, size, offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      pushError(__func__, H5E_READERROR, std::string("read failed: ") + std::strerror(errno));
      return -1;
    }
    if (n == 0) { // past the end of the file: HDF5 expects zeros there
      std::memset(out, 0, size);
      break;
    }
    out += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return 0;
}

herr_t write(H5FD_t* base, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t address, size_t size, const void* buffer) {
  DriverFile* file = asFile(base);
  if (file->guard != nullptr && file->guard->discard) {
    return 0; // after a failure nothing more reaches the file (see the header)
  }
  if (address > kMaxAddress || size > kMaxAddress - address) {
    recordFailure(file->guard, EFBIG, "write beyond the addressable space");
    pushError(__func__, H5E_OVERFLOW, "write beyond the addressable space");
    return -1;
  }
  const auto* in = static_cast<const unsigned char*>(buffer);
  auto offset = static_cast<off_t>(address);
  std::size_t left = size;
  while (left > 0) {
    const ssize_t n = ::pwrite(file->fd, in, left, offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int error = errno;
      recordFailure(file->guard, error,
                    "write of " + std::to_string(size) + " bytes at offset " + std::to_string(address));
      pushError(__func__, H5E_WRITEERROR, std::string("write failed: ") + std::strerror(error));
      return -1;
    }
    in += n;
    left -= static_cast<std::size_t>(n);
    offset += n;
  }
  if (address + size > file->eof) {
    file->eof = address + size;
  }
  return 0;
}

herr_t truncate(H5FD_t* base, hid_t /*dxpl*/, hbool_t closing) {
  DriverFile* file = asFile(base);
  if (file->guard != nullptr && file->guard->discard) {
    return 0;
  }
  // HDF5 truncates to its allocated end at every flush. Growing is needed (space allocated
  // but never written must exist); shrinking waits for the close, so that the reserve
  // made before a flush stays available for the next one.
  const bool grow = file->eoa > file->eof;
  const bool shrink = closing && file->eoa < file->eof;
  if (!grow && !shrink) {
    return 0;
  }
  if (::ftruncate(file->fd, static_cast<off_t>(file->eoa)) != 0) {
    const int error = errno;
    recordFailure(file->guard, error, "resizing the file to " + std::to_string(file->eoa) + " bytes");
    pushError(__func__, H5E_WRITEERROR, std::string("unable to resize the file: ") + std::strerror(error));
    return -1;
  }
  file->eof = file->eoa;
  return 0;
}

herr_t lock(H5FD_t* file, hbool_t readWrite) {
  if (::flock(asFile(file)->fd, (readWrite ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == ENOSYS) {
      return 0; // a file system without locks: as HDF5's best-effort locking
    }
    pushError(__func__, H5E_CANTLOCKFILE, std::string("unable to lock file: ") + std::strerror(errno));
    return -1;
  }
  return 0;
}

herr_t unlock(H5FD_t* file) {
  if (::flock(asFile(file)->fd, LOCK_UN) != 0 && errno != ENOSYS) {
    pushError(__func__, H5E_CANTUNLOCKFILE, std::string("unable to unlock file: ") + std::strerror(errno));
    return -1;
  }
  return 0;
}

H5FD_class_t makeClass() {
  H5FD_class_t cls{};
  cls.name = "kdscope_safe";
  cls.maxaddr = kMaxAddress;
  cls.fc_degree = H5F_CLOSE_WEAK;
  cls.fapl_size = sizeof(DriverConfig);
  cls.fapl_get = faplGet;
  cls.fapl_copy = faplCopy;
  cls.fapl_free = faplFree;
  cls.open = open;
  cls.close = close;
  cls.cmp = compare;
  cls.query = query;
  cls.get_eoa = getEoa;
  cls.set_eoa = setEoa;
  cls.get_eof = getEof;
  cls.get_handle = getHandle;
  cls.read = read;
  cls.write = write;
  cls.truncate = truncate;
  cls.lock = lock;
  cls.unlock = unlock;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  for (int i = 0; i < H5FD_MEM_NTYPES; ++i) {
    cls.fl_map[i] = map[i];
  }
  return cls;
}

} // namespace

hid_t safeDriver() {
  static const H5FD_class_t cls = makeClass();
  static hid_t id = H5I_INVALID_HID;
  if (id < 0 || H5Iis_valid(id) <= 0) {
    id = H5FDregister(&cls);
  }
  return id;
}

herr_t setSafeDriver(hid_t fapl, WriteGuard* guard) {
  const hid_t driver = safeDriver();
  if (driver < 0) {
    return -1;
  }
  const DriverConfig config{guard};
  return H5Pset_driver(fapl, driver, &config);
}

bool reserve(WriteGuard& guard, std::uint64_t extraBytes) {
  DriverFile* file = guard.file;
  if (file == nullptr || guard.discard) {
    return guard.error == 0;
  }
  const haddr_t want = file->eoa + extraBytes;
  if (want <= file->eof) {
    return true;
  }
  // posix_fallocate allocates the blocks (glibc writes zeros where the file system cannot).
  const int error = ::posix_fallocate(file->fd, static_cast<off_t>(file->eof), static_cast<off_t>(want - file->eof));
  if (error == EINVAL || error == EOPNOTSUPP) {
    return true; // cannot reserve here; the write error path still protects the file
  }
  if (error != 0) {
    recordFailure(&guard, error, "reserving " + std::to_string(want - file->eof) + " bytes for a flush");
    return false;
  }
  file->eof = want;
  return true;
}

std::uint64_t allocatedBytes(const WriteGuard& guard) { return guard.file != nullptr ? guard.file->eoa : 0; }

} // namespace kdscope::core::detail
