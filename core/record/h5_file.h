#pragma once
/// A small RAII wrapper over the HDF5 C API in the spirit of HighFive, addressed by
/// object paths ("/tasks/polarity/eval/labels"). The public header has no HDF5 types.
/// Every error is an InputError (reading) or JobError (writing) whose message names the
/// file and the object path at fault. One H5File per thread; HDF5 itself is not used
/// concurrently from two threads (a global mutex in the implementation serialises calls).
/// Files are opened with HDF5's "strong" close degree, as h5py does: HDF5 refuses a second
/// opener of the same file in the same process that asks for another degree (the default).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kdscope::core {

enum class H5Type { Float32, Float16, Int64, String, Other };

/// The class of a dataset's element type, whatever its width (RUN-FORMAT.md says "integer"
/// and "float", so readers accept any width; KDScope itself writes int64 and float32).
enum class H5TypeClass { Float, Integer, String, Other };

/// The mutex that serialises every HDF5 call in the process. Debian 12's libhdf5 1.10.8
/// happens to be built thread-safe, but other builds are not, and HDF5's thread-safe mode
/// serialises everything anyway. H5File takes it in every method; code that calls the HDF5
/// C API directly (tests that inspect a file) must hold it too. Not recursive: never hold
/// it while calling an H5File method.
std::mutex& hdf5Mutex();

/// Walks the whole structure of the HDF5 file at `path` (every object header, link index,
/// attribute, chunk index and string value, and the data of small datasets) in a forked
/// child process. HDF5 1.10 crashes on some corrupt files: when the child dies by a signal,
/// or does not finish within `timeoutSeconds`, this throws InputError naming the file, and
/// the caller never opens it. A file the child reads without crashing passes (HDF5 errors
/// included: the caller's own checks report them). Costs a fork and a read of the file's
/// metadata. Call without holding hdf5Mutex(). RunReader calls it before it opens a file.
void probeHdf5File(const std::string& path, int timeoutSeconds = 60);

class H5File {
public:
  enum class Mode { ReadOnly, ReadWrite, Create /* truncates */ };

  /// Opens or creates. Throws InputError for a missing, non-HDF5 or unreadable file, and
  /// JobError when Create cannot create the file (a write failure).
  H5File(const std::string& path, Mode mode);
  ~H5File();
  H5File(H5File&&) noexcept;
  H5File& operator=(H5File&&) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  [[nodiscard]] const std::string& path() const;

  // Structure.
  [[nodiscard]] bool exists(const std::string& objectPath) const; ///< group or dataset
  [[nodiscard]] bool isGroup(const std::string& objectPath) const;
  [[nodiscard]] bool isDataset(const std::string& objectPath) const;
  /// Names of the direct children of a group, sorted.
  [[nodiscard]] std::vector<std::string> children(const std::string& groupPath) const;
  /// Names of the direct children in the order they were created, for groups that track
  /// creation order (every group H5File creates does); other groups: sorted by name.
  [[nodiscard]] std::vector<std::string> childrenInCreationOrder(const std::string& groupPath) const;
  /// Creates the group and any missing parents.
  void createGroup(const std::string& groupPath);
  /// Unlinks a group (with everything below it) or a dataset. HDF5 does not reclaim the
  /// space in the file.
  void remove(const std::string& objectPath);
  /// Copies the dataset or group `sourcePath` of another open file, with its attributes,
  /// type, shape, chunking and filters, to `path` here (H5Ocopy). Parents are created as
  /// needed; `path` must not exist. Throws InputError when the source object is missing,
  /// JobError when the copy fails.
  void copyFrom(const H5File& source, const std::string& sourcePath, const std::string& path);

  // Datasets. Parents are created as needed. When `extendable`, the first dimension is
  // unlimited and may start at 0. `chunkRows` > 0 gives chunking along the first
  // dimension; `compress` adds shuffle + deflate level 4.
  // `Float16` stores IEEE half precision; writes and reads still use float (writes round to
  // nearest, ties to even, as numpy and torch do). With chunkRows 0, an extendable or
  // compressed dataset gets chunk rows picked for about 1 MiB; a chunk never exceeds 1 MiB
  // (HDF5's default chunk cache), so one row larger than that is also split along the next
  // dimensions. Float datasets are filled with NaN, so rows never written read as NaN.
  void createDataset(const std::string& path, H5Type type, const std::vector<std::uint64_t>& dims,
                     bool extendable = false, std::uint64_t chunkRows = 0, bool compress = false);
  [[nodiscard]] std::vector<std::uint64_t> shape(const std::string& path) const;
  [[nodiscard]] H5Type type(const std::string& path) const;
  [[nodiscard]] H5TypeClass typeClass(const std::string& path) const;
  /// The element type for messages: "float32", "float16", "float64", "int64", "uint8",
  /// "string", ...
  [[nodiscard]] std::string typeName(const std::string& path) const;

  /// Writes `rows` rows starting at row `offset` (a row is the product of the trailing
  /// dims). Data is row-major. Throws if the rows do not fit the current shape.
  void writeRows(const std::string& path, std::uint64_t offset, std::uint64_t rows, const float* data);
  void writeRows(const std::string& path, std::uint64_t offset, std::uint64_t rows,
                 const std::int64_t* data);
  /// Writes the block [start, start + count) (one entry per dimension), row-major; for
  /// writing part of a row, e.g. a block of columns.
  void writeBlock(const std::string& path, const std::vector<std::uint64_t>& start,
                  const std::vector<std::uint64_t>& count, const float* data);
  void writeBlock(const std::string& path, const std::vector<std::uint64_t>& start,
                  const std::vector<std::uint64_t>& count, const std::int64_t* data);
  /// Extends the first dimension and writes the rows at the end.
  void appendRows(const std::string& path, std::uint64_t rows, const float* data);
  void appendRows(const std::string& path, std::uint64_t rows, const std::int64_t* data);
  /// Sets the first dimension (shrinking drops rows; used by resume).
  void resize(const std::string& path, std::uint64_t rows);

  /// Convenience: create (not extendable) and write a whole array.
  void writeFloat(const std::string& path, const std::vector<std::uint64_t>& dims,
                  const std::vector<float>& data, bool compress = false);
  void writeInt64(const std::string& path, const std::vector<std::uint64_t>& dims,
                  const std::vector<std::int64_t>& data, bool compress = false);
  /// Variable-length UTF-8 strings (h5py reads them as str). Invalid UTF-8 and NUL bytes
  /// (HDF5 strings end at a NUL) are replaced by U+FFFD, for strings and string attributes.
  void writeStrings(const std::string& path, const std::vector<std::string>& data);

  /// Reads rows [offset, offset + rows); rows = UINT64_MAX reads to the end.
  [[nodiscard]] std::vector<float> readFloat(const std::string& path, std::uint64_t offset = 0,
                                             std::uint64_t rows = UINT64_MAX) const;
  [[nodiscard]] std::vector<std::int64_t> readInt64(const std::string& path, std::uint64_t offset = 0,
                                                    std::uint64_t rows = UINT64_MAX) const;
  [[nodiscard]] std::vector<std::string> readStrings(const std::string& path) const;

  // Attributes on a group or dataset ("/" is the root).
  void setAttr(const std::string& objectPath, const std::string& name, const std::string& value);
  void setAttr(const std::string& objectPath, const std::string& name, const char* value);
  void setAttr(const std::string& objectPath, const std::string& name, std::int64_t value);
  void setAttr(const std::string& objectPath, const std::string& name, double value);
  void setAttr(const std::string& objectPath, const std::string& name,
               const std::vector<std::string>& value);
  [[nodiscard]] bool hasAttr(const std::string& objectPath, const std::string& name) const;
  [[nodiscard]] std::string attrString(const std::string& objectPath, const std::string& name) const;
  [[nodiscard]] std::int64_t attrInt(const std::string& objectPath, const std::string& name) const;
  [[nodiscard]] double attrDouble(const std::string& objectPath, const std::string& name) const;
  [[nodiscard]] std::vector<std::string> attrStrings(const std::string& objectPath,
                                                     const std::string& name) const;

  /// Flushes all buffers to disk (H5Fflush, then fsync). Throws JobError on failure.
  /// Before it flushes, it allocates on disk the space the flush may need; a disk that cannot
  /// give it stops the flush before it starts (JobError), with the file as the last flush
  /// left it.
  void flush();

  // Write failures (a full disk, a file size limit, an I/O error). Files open for writing
  // go through a driver that remembers the first failed write and from then on writes
  // nothing: every later change throws JobError, and what is on disk stays the last flush
  // (docs/run-format.md, "Status and crashes").
  /// Whether a write has failed.
  [[nodiscard]] bool writeFailed() const;
  /// The failure, e.g. "No space left on device (write of 4096 bytes at offset 81920)";
  /// empty when none.
  [[nodiscard]] std::string writeFailure() const;
  /// Closes the file, writing nothing more, and opens it again for writing as its last
  /// flush left it (to record a final status). Throws like the constructor.
  void reopenAfterWriteFailure();
  /// Bytes HDF5 has allocated in a file open for writing (0 when read-only).
  [[nodiscard]] std::uint64_t allocatedBytes() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace kdscope::core
