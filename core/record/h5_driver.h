#pragma once
// Private to core/record: the HDF5 file driver KDScope writes run files through.
//
// It does what HDF5's default "sec2" driver does (pread/pwrite on one descriptor, flock),
// plus three things a run file needs to survive a full disk (docs/run-format.md, "Status
// and crashes"):
//  - the first failed write (ENOSPC, EFBIG, EIO) is remembered with its errno, and from then
//    on every write is dropped, so that HDF5 cannot overwrite the last flushed state with
//    half a flush; closing such a file then succeeds without touching it (HDF5 1.10 crashes
//    at exit after a close that failed);
//  - reserve(): before a flush, the file is allocated (posix_fallocate) up to the end of
//    HDF5's allocated space plus a margin, so a flush that starts never runs out of space
//    half way; if the disk cannot give the margin, the flush does not start;
//  - truncation at a flush keeps that reserve (HDF5 truncates to its allocated end at every
//    flush); only the final close drops it.
// Files it writes are ordinary HDF5 files (no driver information in the superblock).
// Every function runs with hdf5Mutex() held.

#include <hdf5.h>

#include <cstdint>
#include <string>

namespace kdscope::core::detail {

struct DriverFile;

/// Shared between an H5File and the driver's open file. Owned by the H5File.
struct WriteGuard {
  bool discard = false;      ///< drop every write (set by the first failed write)
  int error = 0;             ///< errno of the first failed write, reservation or truncation
  std::string failedAction;  ///< what failed, for messages ("write of 4096 bytes at 81920")
  DriverFile* file = nullptr; ///< set while the driver has the file open
};

/// The driver's id, registered with HDF5 on first use.
hid_t safeDriver();

/// Makes `fapl` use the driver with `guard`.
herr_t setSafeDriver(hid_t fapl, WriteGuard* guard);

/// Allocates the file on disk up to HDF5's allocated end plus `extraBytes`. Returns false
/// (and records the error in the guard, which then drops every write) when the disk or a
/// file size limit refuses.
bool reserve(WriteGuard& guard, std::uint64_t extraBytes);

/// Bytes HDF5 has allocated in the file (its end of address space), 0 when not open.
std::uint64_t allocatedBytes(const WriteGuard& guard);

} // namespace kdscope::core::detail
