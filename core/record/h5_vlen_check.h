#pragma once

// Internal to core/record (includes hdf5.h): checks a variable-length string dataset's
// stored descriptors before HDF5 follows them. See h5_vlen_check.cpp.

#include <hdf5.h>

#include <string>

namespace kdscope::core::detail {

/// Throws InputError (naming `filePath` and `objectPath`) when an element of the
/// variable-length string dataset `dataset` points to a global heap object that its
/// collection does not hold. Returns quietly when the layout or filters are not ones the
/// check can read (compact storage, filters other than shuffle, deflate and Fletcher-32);
/// HDF5 then reads the dataset unchecked, as before.
void checkVlenDescriptors(hid_t dataset, const std::string& filePath, const std::string& objectPath);

/// The same for variable-length string attribute `name` of `object` (an open group or
/// dataset), read from the attribute message in the object header. Returns quietly for
/// attributes in dense storage or messages it cannot parse.
void checkVlenAttributeDescriptors(hid_t object, const std::string& name, const std::string& filePath,
                                   const std::string& objectPath);

} // namespace kdscope::core::detail
