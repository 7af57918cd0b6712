#pragma once
// Precompiled header for core and the tests that use torch: LibTorch costs 16 to 20 s
// per file to parse on these machines.
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <hdf5.h>
