// Every bundled sample job validates, so the README's commands never start from a broken file.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/job/job_spec.h"

using namespace kdscope::core;

TEST(Samples, EverySampleJobValidates) {
  const std::filesystem::path dir = std::filesystem::path(KDSCOPE_SOURCE_DIR) / "samples";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json" || entry.path().filename().string().rfind("study-", 0) == 0) {
      continue; // study grids (study-*.json) have their own format
    }
    const auto parsed = loadJobFile(entry.path().string());
    std::string issues;
    for (const auto& issue : parsed.issues) {
      issues += issue.str() + "\n";
    }
    EXPECT_TRUE(parsed.job.has_value()) << entry.path() << ":\n" << issues;
    ++checked;
  }
  EXPECT_GE(checked, 3);
}
