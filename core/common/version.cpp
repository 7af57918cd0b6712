#include "core/record/run_writer.h"
namespace kdscope::core {
const char* kdscopeVersion() { return KDSCOPE_VERSION; }
} // namespace kdscope::core
