#pragma once
/// KDScope's version: the project version of CMakeLists.txt, as run files (root attribute
/// kdscope_version), analyses and exported figures record it.

namespace kdscope::core {

const char* kdscopeVersion();

} // namespace kdscope::core
