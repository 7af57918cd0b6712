#pragma once
/// Progress events: plain value structs that core emits from the job's thread. The sink is
/// called on that thread; a GUI forwards them through a queued signal.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace kdscope::core {

struct ProgressEvent {
  enum class Kind { Info, Phase, Step, Epoch, Warning };
  Kind kind = Kind::Info;
  std::string task;    ///< task name, empty before any task starts
  std::string model;   ///< "teacher" or a student's name
  std::string message; ///< human-readable line (phase name, warning text)
  int epoch = 0;       ///< 1-based epoch within the current model
  int epochs = 0;
  long step = 0;       ///< global optimiser step within the current model
  long steps = 0;      ///< total optimiser steps planned for the current model
  double loss = 0.0;   ///< total objective on the last logged step
  std::map<std::string, double> terms; ///< unweighted terms on the last logged step
  double evalAccuracy = -1.0;          ///< set on Epoch events
  std::uint64_t evalExamples = 0;      ///< the eval examples evalAccuracy is over (0: unknown)
  double fraction = 0.0;               ///< overall job progress in [0, 1]
  double elapsedSeconds = 0.0;
};

using ProgressSink = std::function<void(const ProgressEvent&)>;

} // namespace kdscope::core
