// Data-parallel building blocks (core/distributed, docs/distributed.md): the shard of a
// global batch each rank trains on (hand-worked cases and invariants), the rendezvous read
// from the environment (its errors name the variable), and a real 2-rank Gloo group of two
// threads over a FileStore: bucketed gradient sums against the closed form, and the abort
// notice that stops the other rank.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/common/error.h"
#include "core/distributed/process_group.h"

using namespace kdscope::core;

namespace {

/// Sets (or unsets, value nullptr) environment variables for one test, restoring them after.
class ScopedEnv {
public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name);
      m_saved.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value != nullptr) {
        ::setenv(name, value, 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : m_saved) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

private:
  std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

/// Runs body(rank) on two threads, each rank of a 2-rank group over a fresh FileStore.
void withTwoRanks(const std::function<void(dist::Group&)>& body) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("kdscope-dist-test-" + std::to_string(::getpid()) + "-" +
                     std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  std::filesystem::remove(file);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        dist::Rendezvous r;
        r.rank = rank;
        r.worldSize = 2;
        r.fileStore = file.string();
        r.masterAddr = "127.0.0.1";
        r.timeout = std::chrono::seconds(60);
        dist::Group group(r);
        body(group);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(rank)] = e.what();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::filesystem::remove(file);
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

} // namespace

TEST(DistributedShards, HandWorkedCases) {
  using Range = std::pair<std::int64_t, std::int64_t>;
  // 7 rows on 2 ranks: 4 + 3; on 3 ranks: 3 + 2 + 2; 2 rows on 3 ranks: 1 + 1 + 0.
  EXPECT_EQ(dist::shardOf(7, 0, 2), (Range{0, 4}));
  EXPECT_EQ(dist::shardOf(7, 1, 2), (Range{4, 7}));
  EXPECT_EQ(dist::shardOf(7, 0, 3), (Range{0, 3}));
  EXPECT_EQ(dist::shardOf(7, 1, 3), (Range{3, 5}));
  EXPECT_EQ(dist::shardOf(7, 2, 3), (Range{5, 7}));
  EXPECT_EQ(dist::shardOf(2, 2, 3), (Range{2, 2}));
}

TEST(DistributedShards, PartitionEveryBatch) {
  // For every batch size and group size: the shards are contiguous, in rank order, cover
  // [0, n) exactly and differ in size by at most one, so the weights n_r / n sum to 1.
  for (int world = 1; world <= 9; ++world) {
    for (std::int64_t n = 0; n <= 40; ++n) {
      std::int64_t next = 0;
      std::int64_t smallest = n;
      std::int64_t largest = 0;
      for (int rank = 0; rank < world; ++rank) {
        const auto [begin, end] = dist::shardOf(n, rank, world);
        ASSERT_EQ(begin, next) << "n " << n << ", world " << world << ", rank " << rank;
        ASSERT_LE(begin, end);
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
        next = end;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1);
    }
  }
}

TEST(DistributedRendezvous, EnvironmentAndItsErrors) {
  {
    const ScopedEnv env{{"WORLD_SIZE", nullptr}};
    EXPECT_FALSE(dist::rendezvousFromEnvironment().has_value());
  }
  {
    const ScopedEnv env{{"WORLD_SIZE", "4"},          {"RANK", "3"},
                        {"LOCAL_RANK", "1"},          {"MASTER_ADDR", "node1"},
                        {"MASTER_PORT", "29517"},     {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                        {"KDSCOPE_RENDEZVOUS_FILE", nullptr}, {"KDSCOPE_DIST_TIMEOUT", "90"}};
    const auto r = dist::rendezvousFromEnvironment();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->worldSize, 4);
    EXPECT_EQ(r->rank, 3);
    EXPECT_EQ(r->localRank, 1);
    EXPECT_EQ(r->masterAddr, "node1");
    EXPECT_EQ(r->masterPort, 29517);
    EXPECT_TRUE(r->agentStore);
    EXPECT_EQ(r->timeout, std::chrono::seconds(90));
  }
  const auto errorOf = [] {
    try {
      (void)dist::rendezvousFromEnvironment();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  {
    const ScopedEnv env{{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"KDSCOPE_DIST_TIMEOUT", nullptr}};
    EXPECT_NE(errorOf().find("RANK='2': expected an integer from 0 to 1"), std::string::npos) << errorOf();
  }
  {
    const ScopedEnv env{{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", nullptr},
                        {"KDSCOPE_RENDEZVOUS_FILE", nullptr}, {"KDSCOPE_DIST_TIMEOUT", nullptr}};
    EXPECT_NE(errorOf().find("MASTER_ADDR is not set"), std::string::npos) << errorOf();
  }
  {
    const ScopedEnv env{{"WORLD_SIZE", "two"}};
    EXPECT_NE(errorOf().find("WORLD_SIZE='two'"), std::string::npos) << errorOf();
  }
  {
    const ScopedEnv env{{"WORLD_SIZE", "2"}, {"RANK", nullptr}};
    EXPECT_NE(errorOf().find("environment variable RANK is not set"), std::string::npos) << errorOf();
  }
}

TEST(DistributedGroup, BucketedGradientSumsEqualTheClosedForm) {
  // Rank r's gradient of parameter k, element i, is (r + 1) * (k + 1) + i / 8: the sum over
  // 2 ranks is 3 (k + 1) + 2 i / 8, exact in float (small integers and eighths). Buckets of
  // 40 bytes (10 floats) over parameters of 6, 3, 12 and 1 elements: [6, 3], [12], [1]
  // (a parameter larger than a bucket gets one of its own): 3 calls. A parameter without a
  // gradient is left alone.
  withTwoRanks([](dist::Group& group) {
    const std::vector<std::int64_t> sizes = {6, 3, 12, 1};
    std::vector<torch::Tensor> parameters;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      auto p = torch::zeros({sizes[k]}, torch::requires_grad());
      p.mutable_grad() = torch::arange(sizes[k], torch::kFloat32) / 8.0 +
                         static_cast<float>((group.rank() + 1) * static_cast<int>(k + 1));
      parameters.push_back(p);
    }
    auto noGrad = torch::zeros({5}, torch::requires_grad());
    parameters.push_back(noGrad);
    dist::allreduceGradients(group, parameters, 40);
    EXPECT_EQ(group.stats().calls, 3U);
    EXPECT_EQ(group.stats().bytes, (6U + 3U + 12U + 1U) * 4U);
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      const auto expected =
          torch::arange(sizes[k], torch::kFloat32) * (2.0 / 8.0) + static_cast<float>(3 * static_cast<int>(k + 1));
      EXPECT_TRUE(torch::equal(parameters[k].grad(), expected)) << "parameter " << k << " on rank " << group.rank();
    }
    EXPECT_FALSE(noGrad.grad().defined());
  });
}

TEST(DistributedGroup, AbortNoticeNamesTheRankAndStopsTheOther) {
  withTwoRanks([](dist::Group& group) {
    group.checkAbort(); // nothing raised yet
    group.barrier();
    if (group.rank() == 1) {
      group.raiseAbort(/*cancelled=*/false, "task 't', model 'm': boom");
      group.raiseAbort(/*cancelled=*/true, "a later notice is not recorded");
    }
    group.barrier(); // both past the notice
    try {
      group.checkAbort();
      ADD_FAILURE() << "rank " << group.rank() << " saw no abort notice";
    } catch (const dist::PeerStopped& stopped) {
      EXPECT_FALSE(stopped.cancelled);
      EXPECT_EQ(stopped.message, "rank 1 failed: task 't', model 'm': boom");
    }
    group.barrier();
  });
}
