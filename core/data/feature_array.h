#pragma once
/// Vector tasks from a feature array beside a label file: an .npy array (NumPy's format,
/// header parsed here: dtype <f4 or <f8, 2-D, C order; anything else refused naming the
/// file) or a 2-D float dataset of an .h5 file, and a label file (one label per line, or a
/// CSV column). docs/data.md ("Feature arrays") documents the rules.

#include <cstdint>
#include <string>

#include "core/data/dataset.h"
#include "core/data/dataset_file.h"

namespace kdscope::core {

struct FeatureArraySpec {
  std::string path;        ///< .npy file, or .h5 file (then h5Dataset names the dataset)
  std::string h5Dataset;   ///< empty: an .npy file
  std::string labelPath;   ///< the labels: one per line, or a CSV file with labelColumn
  std::string labelColumn; ///< empty: one label per line
  LabelKind labelKind = LabelKind::Auto;
  int numClasses = 0;      ///< integer labels: > 0 bounds them to 0..numClasses-1
};

/// What an .npy header says.
struct NpyHeader {
  std::string descr;          ///< e.g. "<f4"
  bool fortranOrder = false;
  std::vector<std::uint64_t> shape;
  std::uint64_t dataOffset = 0; ///< bytes before the data
};

/// Parses the header of the .npy file at `path` (versions 1.0, 2.0, 3.0). Throws InputError
/// naming the file for a file that is not .npy or a header it cannot read.
NpyHeader readNpyHeader(const std::string& path);

/// Reads the features (as float32, streamed in blocks) and the labels, and checks that
/// their row counts agree. Throws InputError naming the file (and line of a bad label).
/// `control`: after each block of features (at least every control.rowsPerCheck rows), the
/// rows read so far go to its progress and its cancel token is polled (Cancelled).
RawDataset loadFeatureArray(const FeatureArraySpec& spec, const TaskReadControl& control = {});

} // namespace kdscope::core
