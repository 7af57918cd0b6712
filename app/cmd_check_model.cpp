// kdscope check-model MODEL.pt [--manifest M.json] [--task T] [--length L] [--batch B]: the
// pre-flight check of a TorchScript model (core/models/model_check.h, docs/models.md).
#include <CLI/CLI.hpp>

#include <iostream>

#include "app/commands.h"
#include "core/models/model_check.h"

namespace kdscope::app {

namespace {

int commandCheckModel(const core::ModelCheckOptions& options) {
  const auto report = core::checkModel(options);
  std::cout << core::formatModelCheck(report);
  return report.usable ? kExitOk : kExitBadInput;
}

} // namespace

void registerCheckModel(CLI::App& app, int& exitCode) {
  auto options = std::make_shared<core::ModelCheckOptions>();
  auto* cmd = app.add_subcommand(
      "check-model", "Check a TorchScript model and its manifest on one batch: what it provides, what it lacks "
                     "(shapes got against expected) and which analyses will be skipped; exit 0 usable, 2 not");
  cmd->add_option("model", options->modelPath, "TorchScript file (torch.jit.save)")->required();
  cmd->add_option("--manifest", options->manifestPath, "the model's manifest (default: MODEL.json beside MODEL.pt)");
  cmd->add_option("--task", options->task,
                  "a built-in task whose first examples make the batch, encoded with the model's tokenizer "
                  "(default: a synthetic batch)");
  cmd->add_option("--length", options->length,
                  "tokens per row (default 32, or the manifest's max_length if smaller)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", options->batch, "rows in the batch")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", options->seed, "seed of the synthetic batch")->capture_default_str();
  cmd->add_option("--data-dir", options->dataDir,
                  "data cache folder for --task (default: $KDSCOPE_DATA_DIR or ~/.cache/kdscope/data)");
  cmd->callback([options, &exitCode]() { exitCode = guarded([&]() { return commandCheckModel(*options); }); });
}

} // namespace kdscope::app
