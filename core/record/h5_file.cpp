// Above 800 lines on purpose: every HDF5 C call of KDScope is here, behind one RAII wrapper
// whose errors name the file and object; splitting it would spread hid_t handling (and the
// full-disk driver and the crash probe it relies on) over several files.
#include "core/record/h5_file.h"

#include <hdf5.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <utility>

#include "core/common/error.h"
#include "core/record/h5_driver.h"
#include "core/record/h5_vlen_check.h"
#include "core/record/shape_text.h"

namespace kdscope::core {

std::mutex& hdf5Mutex() {
  static std::mutex mutex;
  return mutex;
}

namespace {

// HDF5's default chunk cache holds 1 MiB per dataset: a larger chunk bypasses the cache,
// so every partial write of it would read, decompress, recompress and rewrite it.
constexpr std::uint64_t kMaxChunkBytes = std::uint64_t{1} << 20;
// Datasets kept open for writing, so that their chunk caches survive between the row
// blocks a writer streams (closing a dataset writes and forgets its partial chunks).
// Each holds up to 1 MiB of cache: this bounds that memory.
constexpr std::size_t kMaxOpenDatasets = 16;
constexpr int kDeflateLevel = 4;
constexpr std::uint16_t kHalfQuietNan = 0x7E00;
// Space kept allocated beyond HDF5's end of file before a flush, on top of the chunks the
// open datasets may still have to write: the flush's own metadata, and after a failure the
// final status (see flush()).
constexpr std::uint64_t kFlushReserveBytes = std::uint64_t{256} << 10;
// After a write failure only the final status is written; the disk may be full.
constexpr std::uint64_t kRecoveryReserveBytes = std::uint64_t{64} << 10;
// Reads above this size are checked against the file's size first (see checkReadSize).
constexpr std::uint64_t kReadCheckBytes = std::uint64_t{64} << 20;
// Deflate cannot shrink data by more than about 1032:1, so a dataset whose stored data
// would expand by more than this is not a dataset this file can hold.
constexpr std::uint64_t kMaxExpansion = 1100;
const char* const kKeptNote = "; the file keeps what was recorded up to its last flush";

enum class Fault { Input, Job };

[[noreturn]] void raise(Fault fault, const std::string& message) {
  if (fault == Fault::Input) {
    throw InputError(message);
  }
  throw JobError(message);
}

herr_t innermostError(unsigned n, const H5E_error2_t* error, void* clientData) {
  if (n == 0 && error->desc != nullptr) {
    *static_cast<std::string*>(clientData) = error->desc;
  }
  return 0;
}

/// The most specific description on HDF5's error stack (walked upwards, entry 0 is the
/// innermost), then clears the stack. Must run before any other HDF5 call.
std::string hdf5Detail() {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermostError, &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail;
}

/// Owns one hid_t and closes it exactly once with the matching H5*close.
class Handle {
public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : m_id(id), m_closer(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : m_id(std::exchange(other.m_id, H5I_INVALID_HID)), m_closer(other.m_closer) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      m_id = std::exchange(other.m_id, H5I_INVALID_HID);
      m_closer = other.m_closer;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  [[nodiscard]] hid_t get() const { return m_id; }
  [[nodiscard]] bool valid() const { return m_id >= 0; }
  void reset() {
    if (m_id >= 0 && m_closer != nullptr) {
      m_closer(m_id); // a failed close cannot be reported from a destructor
    }
    m_id = H5I_INVALID_HID;
  }

private:
  hid_t m_id = H5I_INVALID_HID;
  Closer m_closer = nullptr;
};

std::string normalize(const std::string& path) {
  std::string p = path;
  if (p.empty() || p.front() != '/') {
    p.insert(p.begin(), '/');
  }
  while (p.size() > 1 && p.back() == '/') {
    p.pop_back();
  }
  return p;
}

std::string parentOf(const std::string& normalized) {
  const auto slash = normalized.rfind('/');
  return slash == 0 ? std::string("/") : normalized.substr(0, slash);
}

std::string rowRange(std::uint64_t offset, std::uint64_t rows) {
  return std::to_string(offset) + ".." + std::to_string(offset + rows);
}

std::uint64_t product(const std::vector<hsize_t>& dims, std::size_t from) {
  std::uint64_t n = 1;
  for (std::size_t i = from; i < dims.size(); ++i) {
    n *= dims[i];
  }
  return n;
}

/// IEEE binary32 -> binary16 bits, rounding to nearest with ties to even (as numpy and
/// torch do). Done here rather than by HDF5's soft conversion so that the rounding of
/// ties and of the overflow to infinity is the documented one.
std::uint16_t floatToHalf(float value) {
  std::uint32_t x = 0;
  std::memcpy(&x, &value, sizeof x);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t magnitude = x & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) { // NaN: keep it a (quiet) NaN
    return static_cast<std::uint16_t>(sign | kHalfQuietNan | ((magnitude >> 13) & 0x3FFu));
  }
  if (magnitude >= 0x477FF000u) { // >= 65520, the midpoint to the next power: infinity
    return static_cast<std::uint16_t>(sign | 0x7C00u);
  }
  if (magnitude < 0x38800000u) { // below 2^-14: a subnormal half or zero
    if (magnitude <= 0x33000000u) { // <= 2^-25, half of the smallest subnormal: ties to 0
      return sign;
    }
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent; // value / 2^-24 = mantissa >> shift
    std::uint32_t half = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t midpoint = 1u << (shift - 1u);
    if (rest > midpoint || (rest == midpoint && (half & 1u))) {
      ++half; // may carry into the smallest normal, which is the right encoding
    }
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = (magnitude - 0x38000000u) >> 13; // rebias the exponent 127 -> 15
  const std::uint32_t rest = magnitude & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) {
    ++half; // a carry into the exponent is the right rounding
  }
  return static_cast<std::uint16_t>(sign | half);
}

/// Appends U+FFFD.
void appendReplacement(std::string& out) { out += "\xEF\xBF\xBD"; }

/// Length of the valid UTF-8 sequence at `s[i]`, or 0 (Unicode table 3-7: no overlongs,
/// no surrogates, nothing above U+10FFFF). `*prefix` receives how many bytes form a valid
/// prefix, so a broken sequence is replaced by one U+FFFD, as Python does.
std::size_t utf8Sequence(const std::string& s, std::size_t i, std::size_t* prefix) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  *prefix = 1;
  if (lead < 0x80) {
    return lead == 0 ? 0 : 1;
  }
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (i + k >= s.size()) {
      return 0;
    }
    const unsigned char c = byte(i + k);
    const unsigned char lo = k == 1 ? low : 0x80;
    const unsigned char hi = k == 1 ? high : 0xBF;
    if (c < lo || c > hi) {
      return 0;
    }
    *prefix = k + 1;
  }
  return length;
}

bool needsSanitizing(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t prefix = 0;
    const std::size_t n = utf8Sequence(s, i, &prefix);
    if (n == 0) {
      return true;
    }
    i += n;
  }
  return false;
}

std::string sanitizeUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    std::size_t prefix = 0;
    const std::size_t n = utf8Sequence(s, i, &prefix);
    if (n == 0) {
      appendReplacement(out);
      i += prefix;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

/// C string pointers for HDF5's variable-length strings. Only strings that need fixing are
/// copied, so memory stays the caller's own plus one pointer per string.
class CStrings {
public:
  explicit CStrings(const std::vector<std::string>& strings) {
    std::vector<std::size_t> broken;
    m_pointers.reserve(strings.size());
    for (std::size_t i = 0; i < strings.size(); ++i) {
      m_pointers.push_back(strings[i].c_str());
      if (needsSanitizing(strings[i])) {
        broken.push_back(i);
      }
    }
    m_fixed.reserve(broken.size()); // no reallocation below, so the pointers stay valid
    for (const std::size_t i : broken) {
      m_fixed.push_back(sanitizeUtf8(strings[i]));
      m_pointers[i] = m_fixed.back().c_str();
    }
  }
  [[nodiscard]] const char* const* data() const { return m_pointers.data(); }

private:
  std::vector<std::string> m_fixed;
  std::vector<const char*> m_pointers;
};

Handle makeType(hid_t id) { return {id, H5Tclose}; }

/// IEEE half precision, laid out the way h5py's float16 is, so h5py reads it as float16.
Handle halfType() {
  Handle type = makeType(H5Tcopy(H5T_IEEE_F32LE));
  // Fields first (they must fit the current 32-bit precision), then shrink the size.
  H5Tset_fields(type.get(), /*spos=*/15, /*epos=*/10, /*esize=*/5, /*mpos=*/0, /*msize=*/10);
  H5Tset_size(type.get(), 2);
  H5Tset_precision(type.get(), 16);
  H5Tset_ebias(type.get(), 15);
  return type;
}

Handle utf8StringType() {
  Handle type = makeType(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

Handle fileType(H5Type type) {
  switch (type) {
  case H5Type::Float32:
    return makeType(H5Tcopy(H5T_IEEE_F32LE));
  case H5Type::Float16:
    return halfType();
  case H5Type::Int64:
    return makeType(H5Tcopy(H5T_STD_I64LE));
  case H5Type::String:
    return utf8StringType();
  case H5Type::Other:
    break;
  }
  return {};
}

bool isHalf(hid_t type) {
  const Handle half = halfType();
  return H5Tequal(type, half.get()) > 0;
}

H5Type classify(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
    if (size == 4 && esize == 8 && msize == 23) {
      return H5Type::Float32;
    }
    if (size == 2 && esize == 5 && msize == 10) {
      return H5Type::Float16;
    }
  } else if (cls == H5T_INTEGER) {
    if (size == 8 && H5Tget_sign(type) == H5T_SGN_2) {
      return H5Type::Int64;
    }
  } else if (cls == H5T_STRING) {
    return H5Type::String;
  }
  return H5Type::Other;
}

H5TypeClass classOf(hid_t type) {
  switch (H5Tget_class(type)) {
  case H5T_FLOAT:
    return H5TypeClass::Float;
  case H5T_INTEGER:
    return H5TypeClass::Integer;
  case H5T_STRING:
    return H5TypeClass::String;
  default:
    return H5TypeClass::Other;
  }
}

std::string nameOf(hid_t type) {
  const std::string bits = std::to_string(8 * H5Tget_size(type));
  switch (H5Tget_class(type)) {
  case H5T_FLOAT:
    if (H5Tget_size(type) == 2 && classify(type) != H5Type::Float16) {
      return "float16 (not IEEE half)";
    }
    return "float" + bits;
  case H5T_INTEGER:
    return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
  case H5T_STRING:
    return "string";
  case H5T_COMPOUND:
    return "compound";
  case H5T_ENUM:
    return "enum";
  case H5T_ARRAY:
    return "array";
  case H5T_VLEN:
    return "vlen";
  case H5T_REFERENCE:
    return "reference";
  case H5T_OPAQUE:
    return "opaque";
  case H5T_BITFIELD:
    return "bitfield";
  default:
    return "unknown type";
  }
}

void reclaimStrings(hid_t memType, hid_t space, void* buffer) {
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(memType, space, H5P_DEFAULT, buffer);
#else
  H5Dvlen_reclaim(memType, space, H5P_DEFAULT, buffer);
#endif
}

/// Holds the HDF5 mutex for one H5File call. It also turns off HDF5's printing of its error
/// stack (we report errors ourselves, with the file and object path): in a thread-safe
/// build, which Debian's is, that setting belongs to each thread, so it is made once per
/// thread that calls in, not once per process.
class LibraryLock {
public:
  LibraryLock() : m_lock(hdf5Mutex()) {
    thread_local bool quiet = false;
    if (!quiet) {
      H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
      quiet = true;
    }
  }

private:
  std::lock_guard<std::mutex> m_lock;
};

} // namespace

struct H5File::Impl {
  std::string path;
  Mode mode = Mode::ReadOnly;
  // Writable files go through the safe driver (core/record/h5_driver.h); the guard must
  // outlive the HDF5 file, so it is declared before `file`.
  detail::WriteGuard guard;
  bool recovering = false; ///< reopened after a write failure (reopenAfterWriteFailure)
  /// Written since the last flush: the file's bytes may not match what HDF5 holds, so the
  /// byte-level checks of variable-length strings (h5_vlen_check.h) are skipped.
  mutable bool unflushed = false;
  Handle file;
  // Declared after `file`, so destroyed (closed) before it.
  std::vector<std::pair<std::string, Handle>> openDatasets; ///< most recently used last

  void openFile();

  /// Bytes of one chunk of a chunked dataset (0 when not chunked), deflate's worst-case
  /// growth included.
  [[nodiscard]] static std::uint64_t chunkBytes(hid_t dataset) {
    const Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) {
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
    const Handle type(H5Dget_type(dataset), H5Tclose);
    std::vector<hsize_t> chunk(H5S_MAX_RANK);
    const int rank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk.data());
    if (rank <= 0 || !type.valid()) {
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
    chunk.resize(static_cast<std::size_t>(rank));
    const std::uint64_t bytes = product(chunk, 0) * H5Tget_size(type.get());
    return bytes + bytes / 1000 + 64;
  }

  /// Why writes stopped, for messages: "No space left on device (write of 4096 bytes at
  /// offset 81920)". Empty while writes work.
  [[nodiscard]] std::string writeFailure() const {
    if (guard.error == 0) {
      return "";
    }
    return std::string(std::strerror(guard.error)) + " (" + guard.failedAction + ")";
  }

  /// "<file>: <object>: <what>", with HDF5's own most specific reason when `withDetail`.
  /// A write the driver refused says why (the disk is full, ...) instead of HDF5's detail.
  [[noreturn]] void fail(Fault fault, const std::string& object, const std::string& what,
                         bool withDetail = false) const {
    std::string message = path + ": ";
    if (!object.empty()) {
      message += object + ": ";
    }
    message += what;
    if (withDetail) {
      const std::string detail = hdf5Detail();
      const std::string failure = writeFailure();
      if (!failure.empty()) {
        message += ": " + failure + kKeptNote;
      } else if (!detail.empty()) {
        message += " (HDF5: " + detail + ")";
      }
    }
    raise(fault, message);
  }

  void requireWritable(const std::string& object) const {
    unflushed = true; // every write path passes here first
    if (mode == Mode::ReadOnly) {
      fail(Fault::Job, object, "cannot modify: the file is open read-only");
    }
    if (guard.error != 0) {
      fail(Fault::Job, object, "cannot modify: an earlier write failed: " + writeFailure() + kKeptNote);
    }
  }

  [[nodiscard]] bool exists(const std::string& p) const {
    if (p == "/") {
      return true;
    }
    // H5Lexists fails, rather than answering false, when a parent is missing.
    for (std::size_t slash = p.find('/', 1);; slash = p.find('/', slash + 1)) {
      const std::string prefix = p.substr(0, slash);
      if (H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      if (slash == std::string::npos) {
        break;
      }
    }
    const htri_t resolved = H5Oexists_by_name(file.get(), p.c_str(), H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return resolved > 0;
  }

  [[nodiscard]] H5I_type_t objectType(const std::string& p) const {
    if (!exists(p)) {
      return H5I_BADID;
    }
    const Handle object(H5Oopen(file.get(), p.c_str(), H5P_DEFAULT), H5Oclose);
    if (!object.valid()) {
      H5Eclear2(H5E_DEFAULT);
      return H5I_BADID;
    }
    return H5Iget_type(object.get());
  }

  /// Opens the object at p, which must be of `type`; `kind` ("group", "dataset") names it
  /// in the messages.
  Handle openObject(const std::string& p, Fault fault, H5I_type_t type, const std::string& kind,
                    hid_t (*open)(hid_t, const char*, hid_t), Handle::Closer close) const {
    if (objectType(p) != type) {
      fail(fault, p, exists(p) ? "is not a " + kind : "no such " + kind);
    }
    Handle object(open(file.get(), p.c_str(), H5P_DEFAULT), close);
    if (!object.valid()) {
      fail(fault, p, "cannot open " + kind, true);
    }
    return object;
  }

  Handle openGroup(const std::string& p, Fault fault) const {
    return openObject(p, fault, H5I_GROUP, "group", H5Gopen2, H5Gclose);
  }

  Handle openDataset(const std::string& p, Fault fault) const {
    return openObject(p, fault, H5I_DATASET, "dataset", H5Dopen2, H5Dclose);
  }

  /// A dataset kept open for writing (see kMaxOpenDatasets).
  hid_t writableDataset(const std::string& p) {
    const auto found = std::find_if(openDatasets.begin(), openDatasets.end(),
                                    [&](const auto& entry) { return entry.first == p; });
    if (found != openDatasets.end()) {
      std::rotate(found, found + 1, openDatasets.end());
      return openDatasets.back().second.get();
    }
    Handle dataset = openDataset(p, Fault::Job);
    if (openDatasets.size() >= kMaxOpenDatasets) {
      openDatasets.erase(openDatasets.begin());
    }
    openDatasets.emplace_back(p, std::move(dataset));
    return openDatasets.back().second.get();
  }

  /// Closes the kept-open datasets at or below `p` (before it is unlinked).
  void forgetDatasets(const std::string& p) {
    const std::string below = p == "/" ? p : p + "/";
    openDatasets.erase(std::remove_if(openDatasets.begin(), openDatasets.end(),
                                      [&](const auto& entry) {
                                        return entry.first == p || entry.first.rfind(below, 0) == 0;
                                      }),
                       openDatasets.end());
  }

  void createGroups(const std::string& p) {
    if (p == "/") {
      return;
    }
    for (std::size_t slash = p.find('/', 1);; slash = p.find('/', slash + 1)) {
      const std::string prefix = p.substr(0, slash);
      const H5I_type_t type = objectType(prefix);
      if (type == H5I_BADID) {
        // Tracked creation order lets readers list models in the order the job ran them.
        const Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
        H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        const Handle group(H5Gcreate2(file.get(), prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                           H5Gclose);
        if (!group.valid()) {
          fail(Fault::Job, prefix, "cannot create group", true);
        }
      } else if (type != H5I_GROUP) {
        fail(Fault::Job, prefix, "exists and is not a group");
      }
      if (slash == std::string::npos) {
        break;
      }
    }
  }

  std::vector<std::string> children(const std::string& p, bool creationOrder) const {
    const Handle group = openGroup(p, Fault::Input);
    H5G_info_t info{};
    if (H5Gget_info(group.get(), &info) < 0) {
      fail(Fault::Input, p, "cannot list the group", true);
    }
    H5_index_t index = H5_INDEX_NAME;
    if (creationOrder) {
      const Handle gcpl(H5Gget_create_plist(group.get()), H5Pclose);
      unsigned flags = 0;
      if (gcpl.valid() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 &&
          (flags & H5P_CRT_ORDER_TRACKED)) {
        index = H5_INDEX_CRT_ORDER;
      }
    }
    std::vector<std::string> names;
    names.reserve(info.nlinks);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t length = H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (length < 0) {
        fail(Fault::Input, p, "cannot read the name of child " + std::to_string(i), true);
      }
      std::string name(static_cast<std::size_t>(length) + 1, '\0');
      H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(static_cast<std::size_t>(length));
      names.push_back(std::move(name));
    }
    if (index == H5_INDEX_NAME) {
      std::sort(names.begin(), names.end()); // HDF5's name index is already sorted; be sure
    }
    return names;
  }

  struct Extent {
    std::vector<hsize_t> dims;
    std::vector<hsize_t> maxDims;
  };

  Extent extentOf(hid_t dataset, const std::string& p, Fault fault) const {
    const Handle space(H5Dget_space(dataset), H5Sclose);
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (rank < 0) {
      fail(fault, p, "cannot read the dataset's shape", true);
    }
    Extent extent{std::vector<hsize_t>(static_cast<std::size_t>(rank)),
                  std::vector<hsize_t>(static_cast<std::size_t>(rank))};
    H5Sget_simple_extent_dims(space.get(), extent.dims.data(), extent.maxDims.data());
    return extent;
  }

  /// The rows [offset, offset + rows) of `dataset`, as file and memory dataspaces.
  std::pair<Handle, Handle> selectRows(hid_t dataset, const std::string& p, std::uint64_t offset,
                                       std::uint64_t rows, Fault fault, const char* verb) const {
    const Extent extent = extentOf(dataset, p, fault);
    if (extent.dims.empty()) {
      fail(fault, p, std::string("cannot ") + verb + " rows of a scalar dataset");
    }
    const hsize_t have = extent.dims[0];
    if (offset > have || rows > have - offset) {
      fail(fault, p, std::string("cannot ") + verb + " rows " + rowRange(offset, rows) + ": dataset has " +
                         std::to_string(have) + " rows");
    }
    Handle fileSpace(H5Dget_space(dataset), H5Sclose);
    std::vector<hsize_t> start(extent.dims.size(), 0);
    std::vector<hsize_t> count = extent.dims;
    start[0] = offset;
    count[0] = rows;
    if (H5Sselect_hyperslab(fileSpace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0) {
      fail(fault, p, std::string("cannot select rows ") + rowRange(offset, rows), true);
    }
    Handle memSpace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
    return {std::move(fileSpace), std::move(memSpace)};
  }

  enum class Element { Float, Int64 };

  /// Writes the block [start, start + count) of a dataset (count.size() == its rank).
  void writeBlock(const std::string& p, const std::vector<std::uint64_t>& start,
                  const std::vector<std::uint64_t>& count, const void* data, Element element) {
    requireWritable(p);
    const hid_t dataset = writableDataset(p);
    const Extent extent = extentOf(dataset, p, Fault::Job);
    if (start.size() != extent.dims.size() || count.size() != extent.dims.size()) {
      fail(Fault::Job, p,
           "cannot write a block of rank " + std::to_string(count.size()) + " into a dataset of shape " +
               shapeText(extent.dims));
    }
    for (std::size_t d = 0; d < count.size(); ++d) {
      if (start[d] > extent.dims[d] || count[d] > extent.dims[d] - start[d]) {
        fail(Fault::Job, p,
             "cannot write the block at " + shapeText(start) + " of size " + shapeText(count) +
                 ": the dataset has shape " + shapeText(extent.dims));
      }
    }
    const Handle fileSpace(H5Dget_space(dataset), H5Sclose);
    const std::vector<hsize_t> offsets(start.begin(), start.end());
    const std::vector<hsize_t> sizes(count.begin(), count.end());
    if (H5Sselect_hyperslab(fileSpace.get(), H5S_SELECT_SET, offsets.data(), nullptr, sizes.data(), nullptr) < 0) {
      fail(Fault::Job, p, "cannot select the block at " + shapeText(start), true);
    }
    const Handle memSpace(H5Screate_simple(static_cast<int>(sizes.size()), sizes.data(), nullptr), H5Sclose);
    if (product(sizes, 0) == 0) {
      return;
    }
    write(dataset, p, memSpace.get(), fileSpace.get(), data, element,
          "cannot write the block at " + shapeText(start) + " of size " + shapeText(count));
  }

  /// Fails unless `element` values can be written into a dataset of `type` (float values
  /// into a floating-point type, int64 ones into an integer type).
  void requireElementClass(hid_t type, const std::string& p, Element element) const {
    const H5T_class_t cls = H5Tget_class(type);
    if (element == Element::Float && cls != H5T_FLOAT) {
      fail(Fault::Job, p, "cannot write float values into a dataset of " + nameOf(type));
    }
    if (element == Element::Int64 && cls != H5T_INTEGER) {
      fail(Fault::Job, p, "cannot write integer values into a dataset of " + nameOf(type));
    }
  }

  /// H5Dwrite of float or int64 values, converted to half precision by ourselves when the
  /// dataset stores float16 (see floatToHalf).
  void write(hid_t dataset, const std::string& p, hid_t memSpace, hid_t fileSpace, const void* data,
             Element element, const std::string& what) {
    const Handle type(H5Dget_type(dataset), H5Tclose);
    requireElementClass(type.get(), p, element);
    herr_t status = 0;
    if (element == Element::Float && isHalf(type.get())) {
      const auto count = static_cast<std::size_t>(H5Sget_select_npoints(fileSpace));
      std::vector<std::uint16_t> half(count); // bounded by the caller's own block
      const auto* values = static_cast<const float*>(data);
      std::transform(values, values + count, half.begin(), floatToHalf);
      status = H5Dwrite(dataset, type.get(), memSpace, fileSpace, H5P_DEFAULT, half.data());
    } else {
      const hid_t memType = element == Element::Float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
      status = H5Dwrite(dataset, memType, memSpace, fileSpace, H5P_DEFAULT, data);
    }
    if (status < 0) {
      fail(Fault::Job, p, what, true);
    }
  }

  void writeRows(const std::string& p, std::uint64_t offset, std::uint64_t rows, const void* data,
                 Element element) {
    requireWritable(p);
    const hid_t dataset = writableDataset(p);
    const Handle type(H5Dget_type(dataset), H5Tclose);
    requireElementClass(type.get(), p, element);
    auto [fileSpace, memSpace] = selectRows(dataset, p, offset, rows, Fault::Job, "write");
    if (rows == 0) {
      return;
    }
    write(dataset, p, memSpace.get(), fileSpace.get(), data, element, "cannot write rows " + rowRange(offset, rows));
  }

  void appendRows(const std::string& p, std::uint64_t rows, const void* data, Element element) {
    requireWritable(p);
    const hid_t dataset = writableDataset(p);
    Extent extent = extentOf(dataset, p, Fault::Job);
    if (extent.dims.empty() || extent.maxDims[0] != H5S_UNLIMITED) {
      fail(Fault::Job, p, "cannot append rows: the dataset is not extendable");
    }
    const std::uint64_t offset = extent.dims[0];
    if (rows == 0) {
      return;
    }
    extent.dims[0] += rows;
    if (H5Dset_extent(dataset, extent.dims.data()) < 0) {
      fail(Fault::Job, p, "cannot extend to " + std::to_string(extent.dims[0]) + " rows", true);
    }
    writeRows(p, offset, rows, data, element);
  }

  /// Bytes that reading rows [offset, offset + rows) of a dataset of shape `dims` needs in
  /// memory, at `elementBytes` each. Refuses (InputError) a read that the file cannot back:
  /// corrupt dimensions must give a clear error, not an allocation of terabytes, nor a
  /// machine filled with fill values. Stored data expands by at most kMaxExpansion (deflate's
  /// limit); only rows never written (fill values) expand more, and a real run file has few.
  std::uint64_t checkReadSize(const std::string& object, const std::vector<hsize_t>& dims, std::uint64_t offset,
                              std::uint64_t rows, std::uint64_t elementBytes) const {
    std::uint64_t bytes = elementBytes;
    bool overflow = __builtin_mul_overflow(bytes, rows, &bytes);
    for (std::size_t i = 1; i < dims.size(); ++i) {
      overflow = overflow || __builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dims[i]), &bytes);
    }
    const std::string shape = "has shape " + shapeText(dims);
    if (overflow) {
      fail(Fault::Input, object, shape + ": its size overflows 64 bits (corrupt dimensions?)");
    }
    if (bytes <= kReadCheckBytes) {
      return bytes;
    }
    struct stat info {};
    const std::uint64_t fileBytes = ::stat(path.c_str(), &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : 0;
    std::uint64_t backed = 0;
    if (__builtin_mul_overflow(fileBytes, kMaxExpansion, &backed)) {
      backed = UINT64_MAX;
    }
    const std::string reading = shape + ": reading rows " + rowRange(offset, rows) + " needs " +
                                std::to_string(bytes) + " bytes";
    if (bytes > backed) {
      fail(Fault::Input, object,
           reading + ", more than a file of " + std::to_string(fileBytes) +
               " bytes can hold (its dimensions are corrupt, or the data was never written)");
    }
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long pageBytes = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && pageBytes > 0 && bytes / static_cast<std::uint64_t>(pageBytes) > static_cast<std::uint64_t>(pages) / 2) {
      fail(Fault::Input, object, reading + ", more than half of this machine's memory; read it in blocks of rows");
    }
    return bytes;
  }

  template <typename T>
  std::vector<T> readRows(const std::string& p, std::uint64_t offset, std::uint64_t rows, H5T_class_t expected,
                          hid_t memType) const {
    const Handle dataset = openDataset(p, Fault::Input);
    const Handle type(H5Dget_type(dataset.get()), H5Tclose);
    if (H5Tget_class(type.get()) != expected) {
      fail(Fault::Input, p,
           "holds " + nameOf(type.get()) + ", expected " + (expected == H5T_FLOAT ? "floating point" : "integer") +
               " values");
    }
    const Extent extent = extentOf(dataset.get(), p, Fault::Input);
    if (!extent.dims.empty() && rows == UINT64_MAX) {
      rows = offset <= extent.dims[0] ? extent.dims[0] - offset : 0;
    }
    auto [fileSpace, memSpace] = selectRows(dataset.get(), p, offset, rows, Fault::Input, "read");
    const std::uint64_t count = checkReadSize(p, extent.dims, offset, rows, sizeof(T)) / sizeof(T);
    std::vector<T> values;
    try {
      values.resize(count);
    } catch (const std::bad_alloc&) {
      fail(Fault::Input, p, "cannot allocate " + std::to_string(count) + " values for rows " + rowRange(offset, rows));
    } catch (const std::length_error&) {
      fail(Fault::Input, p, "cannot allocate " + std::to_string(count) + " values for rows " + rowRange(offset, rows));
    }
    if (count > 0 && H5Dread(dataset.get(), memType, memSpace.get(), fileSpace.get(), H5P_DEFAULT, values.data()) < 0) {
      fail(Fault::Input, p, "cannot read rows " + rowRange(offset, rows), true);
    }
    return values;
  }

  /// Reads every element of a string dataset or attribute, variable-length or fixed-length.
  /// `read` is H5Dread or H5Aread bound to the object.
  template <typename Read>
  std::vector<std::string> readStringValues(hid_t type, hid_t space, const std::string& object,
                                            const std::string& what, Read read) const {
    if (H5Tget_class(type) != H5T_STRING) {
      fail(Fault::Input, object, what + " holds " + nameOf(type) + ", expected strings");
    }
    const hssize_t points = H5Sget_simple_extent_npoints(space);
    if (points < 0) {
      fail(Fault::Input, object, "cannot read the size of " + what, true);
    }
    const auto count = static_cast<std::size_t>(points);
    // Each string costs at least a pointer and a std::string: check before reserving.
    checkReadSize(object, {static_cast<hsize_t>(count)}, 0, count, sizeof(char*) + sizeof(std::string));
    std::vector<std::string> out;
    out.reserve(count);
    if (count == 0) {
      return out;
    }
    if (H5Tis_variable_str(type) > 0) {
      const Handle memType = utf8StringType();
      H5Tset_cset(memType.get(), H5Tget_cset(type));
      std::vector<char*> pointers(count, nullptr);
      if (read(memType.get(), pointers.data()) < 0) {
        fail(Fault::Input, object, "cannot read " + what, true);
      }
      for (char* s : pointers) {
        out.emplace_back(s != nullptr ? s : "");
      }
      reclaimStrings(memType.get(), space, pointers.data());
    } else {
      const std::size_t size = H5Tget_size(type);
      const Handle memType = makeType(H5Tcopy(type));
      std::vector<char> buffer(count * size);
      if (read(memType.get(), buffer.data()) < 0) {
        fail(Fault::Input, object, "cannot read " + what, true);
      }
      const bool spacePadded = H5Tget_strpad(type) == H5T_STR_SPACEPAD;
      for (std::size_t i = 0; i < count; ++i) {
        const char* s = buffer.data() + i * size;
        std::string value(s, strnlen(s, size));
        if (spacePadded) {
          value.erase(value.find_last_not_of(' ') + 1);
        }
        out.push_back(std::move(value));
      }
    }
    return out;
  }

  void setAttr(const std::string& objectPath, const std::string& name, hid_t fileType, hid_t memType,
               hid_t space, const void* buffer) {
    const std::string p = normalize(objectPath);
    requireWritable(p);
    if (!exists(p)) {
      fail(Fault::Job, p, "cannot write attribute '" + name + "': no such group or dataset");
    }
    const htri_t present = H5Aexists_by_name(file.get(), p.c_str(), name.c_str(), H5P_DEFAULT);
    // Delete and recreate: the new value may have another type or size.
    if (present > 0 && H5Adelete_by_name(file.get(), p.c_str(), name.c_str(), H5P_DEFAULT) < 0) {
      fail(Fault::Job, p, "cannot replace attribute '" + name + "'", true);
    }
    const Handle attr(
        H5Acreate_by_name(file.get(), p.c_str(), name.c_str(), fileType, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    if (!attr.valid() || H5Awrite(attr.get(), memType, buffer) < 0) {
      fail(Fault::Job, p, "cannot write attribute '" + name + "'", true);
    }
  }

  /// A scalar string attribute (h5py reads a str) or a 1-D array of strings (even of one).
  void setStringAttr(const std::string& objectPath, const std::string& name, const std::vector<std::string>& value,
                     bool scalar) {
    const Handle type = utf8StringType();
    const hsize_t count = value.size();
    const Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr), H5Sclose);
    const CStrings strings(value);
    // HDF5 refuses a null buffer even for zero elements.
    const char* none = nullptr;
    setAttr(objectPath, name, type.get(), type.get(), space.get(), value.empty() ? &none : strings.data());
  }

  Handle openAttr(const std::string& objectPath, const std::string& name) const {
    const std::string p = normalize(objectPath);
    if (!exists(p)) {
      fail(Fault::Input, p, "cannot read attribute '" + name + "': no such group or dataset");
    }
    if (H5Aexists_by_name(file.get(), p.c_str(), name.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      fail(Fault::Input, p, "attribute '" + name + "' is missing");
    }
    Handle attr(H5Aopen_by_name(file.get(), p.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) {
      fail(Fault::Input, p, "cannot open attribute '" + name + "'", true);
    }
    return attr;
  }

  /// One number from a scalar or single-element numeric attribute.
  template <typename T>
  T readNumberAttr(const std::string& objectPath, const std::string& name, bool allowFloat, hid_t memType) const {
    const std::string p = normalize(objectPath);
    const Handle attr = openAttr(p, name);
    const Handle type(H5Aget_type(attr.get()), H5Tclose);
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls != H5T_INTEGER && !(allowFloat && cls == H5T_FLOAT)) {
      fail(Fault::Input, p,
           "attribute '" + name + "' is " + nameOf(type.get()) + ", expected " + (allowFloat ? "a number" : "an integer"));
    }
    const Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) {
      fail(Fault::Input, p, "attribute '" + name + "' holds " +
                                std::to_string(H5Sget_simple_extent_npoints(space.get())) + " values, expected one");
    }
    T value{};
    if (H5Aread(attr.get(), memType, &value) < 0) {
      fail(Fault::Input, p, "cannot read attribute '" + name + "'", true);
    }
    return value;
  }

  /// detail::checkVlenAttributeDescriptors on the object at `p`, unless the file was
  /// written since its last flush (the check reads the file's bytes).
  void checkAttributeDescriptors(const std::string& p, const std::string& name) const {
    if (unflushed) {
      return;
    }
    const Handle object(H5Oopen(file.get(), p.c_str(), H5P_DEFAULT), H5Oclose);
    if (!object.valid()) {
      fail(Fault::Input, p, "cannot open the object of attribute '" + name + "'", true);
    }
    detail::checkVlenAttributeDescriptors(object.get(), name, path, p);
  }

  std::vector<std::string> readStringAttr(const std::string& objectPath, const std::string& name) const {
    const std::string p = normalize(objectPath);
    const Handle attr = openAttr(p, name);
    const Handle type(H5Aget_type(attr.get()), H5Tclose);
    const Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (type.valid() && H5Tis_variable_str(type.get()) > 0) {
      checkAttributeDescriptors(p, name);
    }
    return readStringValues(type.get(), space.get(), p, "attribute '" + name + "'",
                            [&](hid_t memType, void* buffer) { return H5Aread(attr.get(), memType, buffer); });
  }
};

H5File::H5File(const std::string& path, Mode mode) : m_impl(std::make_unique<Impl>()) {
  m_impl->path = path;
  m_impl->mode = mode;
  m_impl->unflushed = mode == Mode::Create;
  if (mode != Mode::Create) {
    // Ask the system first: HDF5's own message for a missing file is long and indirect.
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        throw InputError(path + ": no such file");
      }
      throw InputError(path + ": cannot open: " + std::strerror(errno));
    }
    if (S_ISDIR(info.st_mode)) {
      throw InputError(path + ": is a directory, not a file");
    }
    const int fd = ::open(path.c_str(), mode == Mode::ReadOnly ? O_RDONLY : O_RDWR);
    if (fd < 0) {
      throw InputError(path + ": cannot open: " + std::strerror(errno));
    }
    ::close(fd);
  }

  const LibraryLock lock;
  m_impl->openFile();
}

void H5File::Impl::openFile() {
  const Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // The 1.8 format at most, so that h5py, HDFView and h5dump of any version read the file.
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  if (mode != Mode::ReadOnly) {
    guard = detail::WriteGuard{};
    if (detail::setSafeDriver(fapl.get(), &guard) < 0) {
      fail(mode == Mode::Create ? Fault::Job : Fault::Input, "", "cannot set up the file driver", true);
    }
    // Metadata is written only when the file is flushed, never in between (HDF5 evicts
    // dirty metadata to the file whenever its cache fills up, by default). So what a crash
    // leaves is the last flush, not a mixture of that and later changes. The cache then
    // holds all the file's metadata: kilobytes per dataset, small beside the data.
    H5AC_cache_config_t cache{};
    cache.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl.get(), &cache) >= 0) {
      cache.evictions_enabled = false;
      cache.incr_mode = H5C_incr__off;
      cache.flash_incr_mode = H5C_flash_incr__off;
      cache.decr_mode = H5C_decr__off;
      H5Pset_mdc_config(fapl.get(), &cache);
    }
  }
  if (mode == Mode::Create) {
    file = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.valid()) {
      fail(Fault::Job, "", "cannot create the file", true);
    }
    return;
  }
  const htri_t isHdf5 = H5Fis_hdf5(path.c_str());
  if (isHdf5 < 0) {
    fail(Fault::Input, "", "cannot read the file", true);
  }
  if (isHdf5 == 0) {
    throw InputError(path + ": not an HDF5 file");
  }
  const unsigned flags = mode == Mode::ReadOnly ? H5F_ACC_RDONLY : H5F_ACC_RDWR;
  file = Handle(H5Fopen(path.c_str(), flags, fapl.get()), H5Fclose);
  if (!file.valid()) {
    const std::string detail = hdf5Detail();
    std::string message = path + ": cannot open the HDF5 file";
    if (detail.find("truncated") != std::string::npos) {
      message = path + ": the file is truncated (cut short: a copy or download that did not finish?)";
    } else if (detail.find("lock file") != std::string::npos) {
      message += ": another process has it open for writing (a job still running?)";
    }
    throw InputError(message + (detail.empty() ? "" : " (HDF5: " + detail + ")"));
  }
}

H5File::~H5File() {
  if (m_impl) {
    const LibraryLock lock;
    m_impl.reset();
  }
}

H5File::H5File(H5File&&) noexcept = default;

H5File& H5File::operator=(H5File&& other) noexcept {
  if (this != &other) {
    std::unique_ptr<Impl> old = std::exchange(m_impl, std::move(other.m_impl));
    if (old) {
      const LibraryLock lock;
      old.reset();
    }
  }
  return *this;
}

const std::string& H5File::path() const { return m_impl->path; }

bool H5File::exists(const std::string& objectPath) const {
  const LibraryLock lock;
  return m_impl->exists(normalize(objectPath));
}

bool H5File::isGroup(const std::string& objectPath) const {
  const LibraryLock lock;
  return m_impl->objectType(normalize(objectPath)) == H5I_GROUP;
}

bool H5File::isDataset(const std::string& objectPath) const {
  const LibraryLock lock;
  return m_impl->objectType(normalize(objectPath)) == H5I_DATASET;
}

std::vector<std::string> H5File::children(const std::string& groupPath) const {
  const LibraryLock lock;
  return m_impl->children(normalize(groupPath), /*creationOrder=*/false);
}

std::vector<std::string> H5File::childrenInCreationOrder(const std::string& groupPath) const {
  const LibraryLock lock;
  return m_impl->children(normalize(groupPath), /*creationOrder=*/true);
}

void H5File::createGroup(const std::string& groupPath) {
  const LibraryLock lock;
  const std::string p = normalize(groupPath);
  m_impl->requireWritable(p);
  m_impl->createGroups(p);
}

void H5File::remove(const std::string& objectPath) {
  const LibraryLock lock;
  const std::string p = normalize(objectPath);
  m_impl->requireWritable(p);
  if (p == "/") {
    m_impl->fail(Fault::Job, p, "cannot remove the root group");
  }
  if (!m_impl->exists(p)) {
    m_impl->fail(Fault::Job, p, "cannot remove: no such group or dataset");
  }
  m_impl->forgetDatasets(p);
  if (H5Ldelete(m_impl->file.get(), p.c_str(), H5P_DEFAULT) < 0) {
    m_impl->fail(Fault::Job, p, "cannot remove", true);
  }
}

void H5File::copyFrom(const H5File& source, const std::string& sourcePath, const std::string& path) {
  const LibraryLock lock;
  const std::string from = normalize(sourcePath);
  const std::string p = normalize(path);
  m_impl->requireWritable(p);
  if (!source.m_impl->exists(from)) {
    source.m_impl->fail(Fault::Input, from, "cannot copy: no such group or dataset");
  }
  if (m_impl->exists(p)) {
    m_impl->fail(Fault::Job, p, "cannot copy onto an existing object");
  }
  const std::size_t slash = p.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    m_impl->createGroups(p.substr(0, slash));
  }
  if (H5Ocopy(source.m_impl->file.get(), from.c_str(), m_impl->file.get(), p.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) {
    m_impl->fail(Fault::Job, p, "cannot copy '" + from + "' from " + source.m_impl->path, true);
  }
}

void H5File::createDataset(const std::string& path, H5Type type, const std::vector<std::uint64_t>& dims,
                           bool extendable, std::uint64_t chunkRows, bool compress) {
  const LibraryLock lock;
  Impl& impl = *m_impl;
  const std::string p = normalize(path);
  impl.requireWritable(p);
  if (dims.empty()) {
    impl.fail(Fault::Job, p, "cannot create a dataset without dimensions");
  }
  if (type == H5Type::Other) {
    impl.fail(Fault::Job, p, "cannot create a dataset of type Other");
  }
  if (p == "/" || impl.exists(p)) {
    impl.fail(Fault::Job, p, "cannot create the dataset: the path exists");
  }
  impl.createGroups(parentOf(p));

  const Handle dataType = fileType(type);
  const std::vector<hsize_t> shape(dims.begin(), dims.end());
  std::vector<hsize_t> maxShape = shape;
  if (extendable) {
    maxShape[0] = H5S_UNLIMITED;
  }
  const Handle space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), maxShape.data()), H5Sclose);
  const Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!space.valid() || !dcpl.valid()) {
    impl.fail(Fault::Job, p, "cannot create a dataset of shape " + shapeText(shape), true);
  }

  const bool anyZeroTrailing = std::find(shape.begin() + 1, shape.end(), 0) != shape.end();
  // A fixed-size dataset with no rows cannot be chunked (chunks must fit the maximum size).
  const bool chunked = (extendable || compress || chunkRows > 0) && (extendable || shape[0] > 0);
  if (chunked) {
    if (anyZeroTrailing) {
      impl.fail(Fault::Job, p, "cannot chunk a dataset of shape " + shapeText(shape) + " (a dimension is 0)");
    }
    const std::uint64_t elementBytes = H5Tget_size(dataType.get());
    std::uint64_t rowBytes = elementBytes;
    for (std::size_t d = 1; d < shape.size(); ++d) {
      if (__builtin_mul_overflow(rowBytes, static_cast<std::uint64_t>(shape[d]), &rowBytes)) {
        impl.fail(Fault::Job, p, "cannot create a dataset of shape " + shapeText(shape) + ": a row overflows 64 bits");
      }
    }
    const std::uint64_t budgetRows = std::max<std::uint64_t>(1, kMaxChunkBytes / rowBytes);
    std::uint64_t rows = chunkRows > 0 ? std::min(chunkRows, budgetRows) : budgetRows;
    if (!extendable) {
      rows = std::min<std::uint64_t>(rows, shape[0]);
    }
    std::vector<hsize_t> chunk = shape;
    chunk[0] = rows;
    // One row above the budget: halve the next dimensions until a chunk fits.
    for (std::size_t d = 1; d < chunk.size(); ++d) {
      while (chunk[d] > 1 && elementBytes * product(chunk, 0) > kMaxChunkBytes) {
        chunk[d] = (chunk[d] + 1) / 2;
      }
    }
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    if (compress) {
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), kDeflateLevel);
    }
  }
  if (type == H5Type::Float32) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &nan);
  } else if (type == H5Type::Float16) {
    const std::uint16_t nan = kHalfQuietNan;
    H5Pset_fill_value(dcpl.get(), dataType.get(), &nan);
  }
  Handle dataset(H5Dcreate2(impl.file.get(), p.c_str(), dataType.get(), space.get(), H5P_DEFAULT, dcpl.get(),
                            H5P_DEFAULT),
                 H5Dclose);
  if (!dataset.valid()) {
    impl.fail(Fault::Job, p, "cannot create a dataset of shape " + shapeText(shape), true);
  }
  if (impl.openDatasets.size() >= kMaxOpenDatasets) {
    impl.openDatasets.erase(impl.openDatasets.begin());
  }
  impl.openDatasets.emplace_back(p, std::move(dataset));
}

std::vector<std::uint64_t> H5File::shape(const std::string& path) const {
  const LibraryLock lock;
  const std::string p = normalize(path);
  const Handle dataset = m_impl->openDataset(p, Fault::Input);
  const auto extent = m_impl->extentOf(dataset.get(), p, Fault::Input);
  return {extent.dims.begin(), extent.dims.end()};
}

H5Type H5File::type(const std::string& path) const {
  const LibraryLock lock;
  const Handle dataset = m_impl->openDataset(normalize(path), Fault::Input);
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  return classify(type.get());
}

H5TypeClass H5File::typeClass(const std::string& path) const {
  const LibraryLock lock;
  const Handle dataset = m_impl->openDataset(normalize(path), Fault::Input);
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  return classOf(type.get());
}

std::string H5File::typeName(const std::string& path) const {
  const LibraryLock lock;
  const Handle dataset = m_impl->openDataset(normalize(path), Fault::Input);
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  return nameOf(type.get());
}

void H5File::writeRows(const std::string& path, std::uint64_t offset, std::uint64_t rows, const float* data) {
  const LibraryLock lock;
  m_impl->writeRows(normalize(path), offset, rows, data, Impl::Element::Float);
}

void H5File::writeRows(const std::string& path, std::uint64_t offset, std::uint64_t rows,
                       const std::int64_t* data) {
  const LibraryLock lock;
  m_impl->writeRows(normalize(path), offset, rows, data, Impl::Element::Int64);
}

void H5File::writeBlock(const std::string& path, const std::vector<std::uint64_t>& start,
                        const std::vector<std::uint64_t>& count, const float* data) {
  const LibraryLock lock;
  m_impl->writeBlock(normalize(path), start, count, data, Impl::Element::Float);
}

void H5File::writeBlock(const std::string& path, const std::vector<std::uint64_t>& start,
                        const std::vector<std::uint64_t>& count, const std::int64_t* data) {
  const LibraryLock lock;
  m_impl->writeBlock(normalize(path), start, count, data, Impl::Element::Int64);
}

void H5File::appendRows(const std::string& path, std::uint64_t rows, const float* data) {
  const LibraryLock lock;
  m_impl->appendRows(normalize(path), rows, data, Impl::Element::Float);
}

void H5File::appendRows(const std::string& path, std::uint64_t rows, const std::int64_t* data) {
  const LibraryLock lock;
  m_impl->appendRows(normalize(path), rows, data, Impl::Element::Int64);
}

void H5File::resize(const std::string& path, std::uint64_t rows) {
  const LibraryLock lock;
  const std::string p = normalize(path);
  m_impl->requireWritable(p);
  const hid_t dataset = m_impl->writableDataset(p);
  auto extent = m_impl->extentOf(dataset, p, Fault::Job);
  if (extent.dims.empty() || (extent.maxDims[0] != H5S_UNLIMITED && rows > extent.maxDims[0])) {
    m_impl->fail(Fault::Job, p, "cannot resize to " + std::to_string(rows) + " rows: the dataset is not extendable");
  }
  extent.dims[0] = rows;
  if (H5Dset_extent(dataset, extent.dims.data()) < 0) {
    m_impl->fail(Fault::Job, p, "cannot resize to " + std::to_string(rows) + " rows", true);
  }
}

namespace {
std::uint64_t elementCount(const std::vector<std::uint64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), std::uint64_t{1}, std::multiplies<>());
}
} // namespace

void H5File::writeFloat(const std::string& path, const std::vector<std::uint64_t>& dims,
                        const std::vector<float>& data, bool compress) {
  if (data.size() != elementCount(dims)) {
    throw JobError(m_impl->path + ": " + normalize(path) + ": " + std::to_string(data.size()) +
                   " values do not fill the shape " + shapeText(dims));
  }
  createDataset(path, H5Type::Float32, dims, false, 0, compress);
  writeRows(path, 0, dims.empty() ? 0 : dims[0], data.data());
}

void H5File::writeInt64(const std::string& path, const std::vector<std::uint64_t>& dims,
                        const std::vector<std::int64_t>& data, bool compress) {
  if (data.size() != elementCount(dims)) {
    throw JobError(m_impl->path + ": " + normalize(path) + ": " + std::to_string(data.size()) +
                   " values do not fill the shape " + shapeText(dims));
  }
  createDataset(path, H5Type::Int64, dims, false, 0, compress);
  writeRows(path, 0, dims.empty() ? 0 : dims[0], data.data());
}

void H5File::writeStrings(const std::string& path, const std::vector<std::string>& data) {
  createDataset(path, H5Type::String, {data.size()});
  const LibraryLock lock;
  const std::string p = normalize(path);
  if (data.empty()) {
    return;
  }
  const hid_t dataset = m_impl->writableDataset(p);
  const Handle type = utf8StringType();
  const CStrings strings(data);
  if (H5Dwrite(dataset, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, strings.data()) < 0) {
    m_impl->fail(Fault::Job, p, "cannot write " + std::to_string(data.size()) + " strings", true);
  }
}

std::vector<float> H5File::readFloat(const std::string& path, std::uint64_t offset, std::uint64_t rows) const {
  const LibraryLock lock;
  // HDF5 converts any float width (half included, exactly) to float.
  return m_impl->readRows<float>(normalize(path), offset, rows, H5T_FLOAT, H5T_NATIVE_FLOAT);
}

std::vector<std::int64_t> H5File::readInt64(const std::string& path, std::uint64_t offset,
                                            std::uint64_t rows) const {
  const LibraryLock lock;
  return m_impl->readRows<std::int64_t>(normalize(path), offset, rows, H5T_INTEGER, H5T_NATIVE_INT64);
}

std::vector<std::string> H5File::readStrings(const std::string& path) const {
  const LibraryLock lock;
  const std::string p = normalize(path);
  const Handle dataset = m_impl->openDataset(p, Fault::Input);
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  const Handle space(H5Dget_space(dataset.get()), H5Sclose);
  if (type.valid() && H5Tis_variable_str(type.get()) > 0) {
    // The check reads the file's bytes: skipped while writes since the last flush may
    // not be on disk yet.
    if (!m_impl->unflushed) {
      detail::checkVlenDescriptors(dataset.get(), m_impl->path, p);
    }
  }
  return m_impl->readStringValues(type.get(), space.get(), p, "the dataset", [&](hid_t memType, void* buffer) {
    return H5Dread(dataset.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
  });
}

void H5File::setAttr(const std::string& objectPath, const std::string& name, const std::string& value) {
  const LibraryLock lock;
  m_impl->setStringAttr(objectPath, name, {value}, /*scalar=*/true);
}

void H5File::setAttr(const std::string& objectPath, const std::string& name, const char* value) {
  setAttr(objectPath, name, std::string(value != nullptr ? value : ""));
}

void H5File::setAttr(const std::string& objectPath, const std::string& name, std::int64_t value) {
  const LibraryLock lock;
  const Handle type = makeType(H5Tcopy(H5T_STD_I64LE));
  const Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  m_impl->setAttr(objectPath, name, type.get(), H5T_NATIVE_INT64, space.get(), &value);
}

void H5File::setAttr(const std::string& objectPath, const std::string& name, double value) {
  const LibraryLock lock;
  const Handle type = makeType(H5Tcopy(H5T_IEEE_F64LE));
  const Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  m_impl->setAttr(objectPath, name, type.get(), H5T_NATIVE_DOUBLE, space.get(), &value);
}

void H5File::setAttr(const std::string& objectPath, const std::string& name, const std::vector<std::string>& value) {
  const LibraryLock lock;
  m_impl->setStringAttr(objectPath, name, value, /*scalar=*/false);
}

bool H5File::hasAttr(const std::string& objectPath, const std::string& name) const {
  const LibraryLock lock;
  const std::string p = normalize(objectPath);
  if (!m_impl->exists(p)) {
    m_impl->fail(Fault::Input, p, "cannot look up attribute '" + name + "': no such group or dataset");
  }
  const htri_t present = H5Aexists_by_name(m_impl->file.get(), p.c_str(), name.c_str(), H5P_DEFAULT);
  if (present < 0) {
    m_impl->fail(Fault::Input, p, "cannot look up attribute '" + name + "'", true);
  }
  return present > 0;
}

std::string H5File::attrString(const std::string& objectPath, const std::string& name) const {
  const LibraryLock lock;
  std::vector<std::string> values = m_impl->readStringAttr(objectPath, name);
  if (values.size() != 1) {
    m_impl->fail(Fault::Input, normalize(objectPath),
                 "attribute '" + name + "' holds " + std::to_string(values.size()) + " strings, expected one");
  }
  return std::move(values.front());
}

std::int64_t H5File::attrInt(const std::string& objectPath, const std::string& name) const {
  const LibraryLock lock;
  return m_impl->readNumberAttr<std::int64_t>(objectPath, name, /*allowFloat=*/false, H5T_NATIVE_INT64);
}

double H5File::attrDouble(const std::string& objectPath, const std::string& name) const {
  const LibraryLock lock;
  return m_impl->readNumberAttr<double>(objectPath, name, /*allowFloat=*/true, H5T_NATIVE_DOUBLE);
}

std::vector<std::string> H5File::attrStrings(const std::string& objectPath, const std::string& name) const {
  const LibraryLock lock;
  return m_impl->readStringAttr(objectPath, name);
}

void H5File::flush() {
  const LibraryLock lock;
  Impl& impl = *m_impl;
  if (impl.mode == Mode::ReadOnly) {
    return;
  }
  impl.requireWritable("");
  // Allocate what the flush may write before it starts: the chunks the open datasets still
  // hold in their caches, and a margin for metadata. A disk that cannot give it refuses
  // here, before any metadata has been rewritten, so the file stays as the last flush left
  // it (h5_driver.h); and the margin left over lets the final status be recorded.
  std::uint64_t reserve = impl.recovering ? kRecoveryReserveBytes : kFlushReserveBytes;
  for (const auto& [name, dataset] : impl.openDatasets) {
    reserve += impl.chunkBytes(dataset.get());
  }
  if (!detail::reserve(impl.guard, reserve)) {
    impl.fail(Fault::Job, "", "cannot flush: " + impl.writeFailure() + kKeptNote);
  }
  if (H5Fflush(impl.file.get(), H5F_SCOPE_GLOBAL) < 0) {
    impl.fail(Fault::Job, "", "cannot flush the file", true);
  }
  // H5Fflush hands the data to the kernel; fsync makes it survive a machine crash too.
  void* handle = nullptr;
  if (H5Fget_vfd_handle(impl.file.get(), H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
    impl.fail(Fault::Job, "", "cannot get the file descriptor to sync", true);
  }
  if (::fsync(*static_cast<int*>(handle)) != 0) {
    impl.fail(Fault::Job, "", std::string("cannot sync the file to disk: ") + std::strerror(errno));
  }
  // Their caches were just written: closing them costs nothing now, and the next flush then
  // reserves room only for the datasets written after this one.
  impl.openDatasets.clear();
  impl.unflushed = false;
}

bool H5File::writeFailed() const {
  const LibraryLock lock;
  return m_impl->guard.error != 0;
}

std::string H5File::writeFailure() const {
  const LibraryLock lock;
  return m_impl->writeFailure();
}

void H5File::reopenAfterWriteFailure() {
  const LibraryLock lock;
  Impl& impl = *m_impl;
  if (impl.mode == Mode::ReadOnly) {
    return;
  }
  // The driver drops every write since the failure, so closing writes nothing: what is on
  // disk is the last flush (plus data written since that nothing refers to). Open that.
  impl.guard.discard = true;
  impl.openDatasets.clear();
  impl.file.reset();
  hdf5Detail(); // a close of a file that lost writes may leave errors on the stack
  impl.mode = Mode::ReadWrite;
  impl.openFile();
  impl.recovering = true;
}

std::uint64_t H5File::allocatedBytes() const {
  const LibraryLock lock;
  return detail::allocatedBytes(m_impl->guard);
}

} // namespace kdscope::core
