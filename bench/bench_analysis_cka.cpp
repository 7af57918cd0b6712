// CKA layer matrix timing (bench/run-analysis-bench.sh; results in bench/README.md):
//   bench_analysis_cka DIR N LAYERS WIDTH [THREADS]
// reads DIR/teacher.f32 and DIR/student.f32 (raw little-endian float32, [N, LAYERS, WIDTH],
// written by bench/analysis_numpy.py), computes the LAYERS x LAYERS linear CKA matrix with
// core/analysis (best of 3) and prints one JSON line with the time and the matrix.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/analysis/cka.h"

namespace {

std::vector<float> readRaw(const std::string& path, std::size_t count) {
  std::vector<float> data(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(count * sizeof(float)));
  if (!in) {
    std::cerr << path << ": cannot read " << count << " floats\n";
    std::exit(2);
  }
  return data;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: bench_analysis_cka DIR N LAYERS WIDTH [THREADS]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::size_t n = std::stoul(argv[2]);
  const std::size_t layers = std::stoul(argv[3]);
  const std::size_t width = std::stoul(argv[4]);
  kdscope::core::analysis::CkaOptions options;
  options.threads = argc > 5 ? std::stoul(argv[5]) : 0;
  const auto t = readRaw(dir + "/teacher.f32", n * layers * width);
  const auto s = readRaw(dir + "/student.f32", n * layers * width);
  double best = 1e300;
  kdscope::core::analysis::Matrix m;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    m = kdscope::core::analysis::ckaMatrix(t, layers, width, s, layers, width, options);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("{\"impl\": \"kdscope\", \"seconds\": %.4f, \"threads\": %zu, \"matrix\": [", best, options.threads);
  for (std::size_t i = 0; i < m.values.size(); ++i) {
    std::printf("%s%.17g", i ? ", " : "", m.values[i]);
  }
  std::printf("]}\n");
  return 0;
}
