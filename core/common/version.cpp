#include "core/common/version.h"

namespace kdscope::core {

const char* kdscopeVersion() { return KDSCOPE_VERSION; }

} // namespace kdscope::core
