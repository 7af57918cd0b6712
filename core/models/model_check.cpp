// The pre-flight check of TorchScript models (model_check.h) and its torch-side half
// (preflightTorchScript, encodeTextBatch in torchscript_model.h).
#include "core/models/model_check.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "core/common/error.h"
#include "core/data/dataset.h"
#include "core/models/model_tokenizer.h"
#include "core/models/torchscript_model.h"
#include "core/models/torchscript_outputs.h"

namespace kdscope::core {

namespace {

namespace ts = torchscript;

constexpr int kDefaultLength = 32;
/// Attention rows must sum to 1 within this (float32 softmax over a few hundred keys is
/// within 1e-5 of it; a map of scores or of head-averaged sums is far off).
constexpr double kRowSumTolerance = 1e-3;

const char* const kHiddenTerms = "training terms hidden_mse, hidden_cosine, pkd, infonce, mi_alpha";

std::string inputDescription(const ModelManifest& m, const Batch& batch) {
  std::string out;
  const auto rows = m.isVector() ? batch.features.size(0) : batch.tokens.size(0);
  const auto length = m.isVector() ? 0 : batch.tokens.size(1);
  for (const auto& in : m.inputs) {
    std::string shape;
    switch (in.kind) {
    case ModelInput::HeadMask:
      shape = ts::shapeString({m.layers, m.heads});
      break;
    case ModelInput::Features:
      shape = ts::shapeString({rows, m.features});
      break;
    default:
      shape = ts::shapeString({rows, length});
    }
    out += (out.empty() ? "" : ", ") + std::string(inputName(in.kind)) + " " + shape;
  }
  return out;
}

/// Notes where forward's argument names are input names other than the manifest's at that place.
void noteArgumentNames(TorchScriptClassifierImpl& model, ModelCheckReport& r) {
  const auto& schema = model.module().get_method("forward").function().getSchema();
  const auto& m = model.manifest();
  for (std::size_t i = 0; i < m.inputs.size() && i + 1 < schema.arguments().size(); ++i) {
    const std::string arg = schema.arguments()[i + 1].name();
    const std::string given = inputName(m.inputs[i].kind);
    const char* known[] = {"input_ids", "attention_mask", "padding_mask", "token_type_ids", "position_ids", "head_mask",
                           "features"};
    const bool isKnown = std::any_of(std::begin(known), std::end(known), [&](const char* k) { return arg == k; });
    if (isKnown && arg != given) {
      r.notes.push_back("forward's argument " + std::to_string(i + 1) + " is named '" + arg + "', but the manifest's inputs[" +
                        std::to_string(i) + "] is '" + given + "': is the order of \"inputs\" right?");
    }
  }
}

/// The smallest and largest sum of an attention row, over the real (non-padding) query rows of
/// every layer and head.
std::pair<double, double> rowSumRange(const std::vector<torch::Tensor>& attention, const torch::Tensor& mask) {
  double low = std::numeric_limits<double>::infinity();
  double high = -low;
  for (const auto& a : attention) {
    auto sums = a.sum(-1); // [B, H, L]
    if (mask.defined()) {
      sums = sums.masked_select(mask.to(torch::kBool).unsqueeze(1).expand_as(sums));
    }
    low = std::min(low, sums.min().item<double>());
    high = std::max(high, sums.max().item<double>());
  }
  return {low, high};
}

void addSkipped(ModelCheckReport& r, const std::string& what, const std::string& reason) {
  r.skipped.push_back({what, reason});
}

/// Runs one forward with a head gate of ones that requires grad; "" when gradients of the
/// logits reach the gate, else why not.
std::string headGateProblem(TorchScriptClassifierImpl& model, const Batch& batch) {
  const auto& m = model.manifest();
  try {
    torch::AutoGradMode grad(true);
    auto gate = torch::ones({m.layers, m.heads}, torch::TensorOptions().requires_grad(true));
    const auto value = model.runModule(batch, gate);
    std::vector<OutputProblem> problems;
    const auto rows = batch.tokens.size(0);
    const auto logits = ts::extractLogits(value, m.logits, {rows, batch.tokens.size(1), m.numClasses(), m.layers, m.heads,
                                                           m.width, false},
                                          problems);
    if (!logits.defined() || !logits.requires_grad()) {
      return "the logits do not depend on head_mask (the module ignores it): head importance would be 0 everywhere";
    }
    const auto grads = torch::autograd::grad({logits.sum()}, {gate}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    if (grads.empty() || !grads[0].defined() || grads[0].abs().sum().item<double>() == 0.0) {
      return "the logits do not depend on head_mask (the module ignores it): head importance would be 0 everywhere";
    }
    return {};
  } catch (const std::exception& e) {
    return "a forward with head_mask requiring gradients failed: " + ts::summarizeError(e);
  }
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += (out.empty() ? "" : ", ") + n;
  }
  return out;
}

/// The check's batch: a built-in task's first rows, or a synthetic one.
Batch makeCheckBatch(const ModelCheckOptions& options, const ModelManifest& m, ModelCheckReport& r,
                     std::string& description) {
  if (options.batch < 1) {
    throw InputError("batch: must be at least 1 row, not " + std::to_string(options.batch));
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const auto rows = static_cast<std::int64_t>(options.batch);
  Batch batch;
  RawDataset raw;
  if (!options.task.empty()) {
    TaskSpec spec;
    spec.name = options.task;
    raw = loadRawDataset(spec, resolveDataDir(options.dataDir), options.seed);
    if (raw.labels.empty()) {
      throw InputError("task '" + options.task + "': has no examples");
    }
    if ((raw.kind == TaskKind::Vector) != m.isVector()) {
      throw InputError("task '" + options.task + "' is a " + (raw.kind == TaskKind::Vector ? "vector" : "text") +
                       " task, but manifest '" + m.path + "' describes a " + (m.isVector() ? "vector" : "text") +
                       " model (field 'inputs')");
    }
    if (raw.classNames.size() != m.classNames.size()) {
      throw InputError("task '" + options.task + "' has " + std::to_string(raw.classNames.size()) + " classes (" +
                       joinNames(raw.classNames) + "), but manifest '" + m.path + "' field 'class_names' has " +
                       std::to_string(m.classNames.size()) + " (" + joinNames(m.classNames) + ")");
    }
    if (raw.classNames != m.classNames) {
      r.notes.push_back("the class names differ: task '" + options.task + "' (" + joinNames(raw.classNames) +
                        "), manifest (" + joinNames(m.classNames) + "); classes are matched by position");
    }
  }
  const auto take = raw.labels.empty() ? rows : std::min<std::int64_t>(rows, static_cast<std::int64_t>(raw.labels.size()));
  if (m.isVector()) {
    if (!options.task.empty()) {
      if (raw.dim != m.features) {
        throw InputError("task '" + options.task + "' has " + std::to_string(raw.dim) + " features per example, but manifest '" +
                         m.path + "' field 'sizes.features' is " + std::to_string(m.features));
      }
      std::vector<float> rowsData(raw.features.begin(), raw.features.begin() + take * raw.dim);
      batch.features = torch::from_blob(rowsData.data(), {take, raw.dim}, torch::kFloat).clone();
      description = std::to_string(take) + " rows of " + std::to_string(raw.dim) + " features: the first examples of task '" +
                    options.task + "'";
    } else {
      batch.features = torch::randn({rows, m.features}, generator);
      description = std::to_string(rows) + " rows of " + std::to_string(m.features) +
                    " features, synthetic: standard normal (seed " + std::to_string(options.seed) + ")";
    }
    return batch;
  }
  int length = options.length > 0 ? options.length : (m.maxLength > 0 ? std::min(kDefaultLength, m.maxLength) : kDefaultLength);
  if (m.maxLength > 0 && length > m.maxLength) {
    throw InputError("length: " + std::to_string(length) + " tokens exceed manifest '" + m.path +
                     "' field 'sizes.max_length' (" + std::to_string(m.maxLength) + ")");
  }
  if (length < 2) {
    throw InputError("length: must be at least 2 tokens, not " + std::to_string(length));
  }
  const auto tokenizer = ModelTokenizer::fromManifest(m);
  if (!options.task.empty()) {
    const std::vector<std::string> texts(raw.texts.begin(), raw.texts.begin() + take);
    batch = encodeTextBatch(tokenizer, texts, {}, length);
    description = std::to_string(take) + " rows of " + std::to_string(length) + " tokens: the first examples of task '" +
                  options.task + "'";
    return batch;
  }
  // Synthetic: ids drawn from the vocabulary's ordinary tokens; the second row padded to half.
  std::vector<std::int64_t> ordinary;
  const auto& vocab = tokenizer.vocab();
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    const auto& t = vocab[i];
    if (!(t.size() >= 2 && t.front() == '[' && t.back() == ']')) {
      ordinary.push_back(static_cast<std::int64_t>(i));
    }
  }
  if (ordinary.empty()) {
    throw InputError("vocabulary file '" + m.tokenizer->vocabPath + "': has no ordinary tokens (only [SPECIAL] ones)");
  }
  const auto draws = torch::randint(static_cast<std::int64_t>(ordinary.size()), {rows, length}, generator);
  auto tokens = torch::full({rows, length}, tokenizer.padId(), torch::kLong);
  auto mask = torch::zeros({rows, length}, torch::kBool);
  auto tokenData = tokens.accessor<std::int64_t, 2>();
  auto maskData = mask.accessor<bool, 2>();
  auto drawData = draws.accessor<std::int64_t, 2>();
  for (std::int64_t b = 0; b < rows; ++b) {
    const std::int64_t used = b % 2 == 1 ? std::max<std::int64_t>(2, length / 2) : length;
    for (std::int64_t i = 0; i < used; ++i) {
      tokenData[b][i] = ordinary[static_cast<std::size_t>(drawData[b][i])];
      maskData[b][i] = true;
    }
    tokenData[b][0] = tokenizer.clsId();
    if (tokenizer.sepId() >= 0) {
      tokenData[b][used - 1] = tokenizer.sepId();
    }
  }
  batch.tokens = tokens;
  batch.mask = mask;
  batch.tokenTypes = torch::zeros({rows, length}, torch::kLong);
  description = std::to_string(rows) + " rows of " + std::to_string(length) + " tokens" +
                (rows > 1 ? " (the second padded to " + std::to_string(std::max(2, length / 2)) + ")" : std::string()) +
                ", synthetic: random tokens of the vocabulary (seed " + std::to_string(options.seed) + ")";
  return batch;
}

void fillFromManifest(const ModelManifest& m, ModelCheckReport& r) {
  r.kind = m.isVector() ? "vector" : "text";
  r.layers = m.layers;
  r.heads = m.heads;
  r.width = m.width;
  r.classNames = m.classNames;
}

} // namespace

Batch encodeTextBatch(const ModelTokenizer& tokenizer, const std::vector<std::string>& texts,
                      const std::vector<std::string>& pairTexts, int length) {
  const bool pairs = !pairTexts.empty();
  if (pairs && pairTexts.size() != texts.size()) {
    throw InputError("encodeTextBatch: " + std::to_string(texts.size()) + " texts but " + std::to_string(pairTexts.size()) +
                     " second texts");
  }
  if (length < (pairs ? 3 : 2)) {
    throw InputError("length: must be at least " + std::to_string(pairs ? 3 : 2) + " tokens, not " + std::to_string(length));
  }
  const auto rows = static_cast<std::int64_t>(texts.size());
  auto tokens = torch::zeros({rows, length}, torch::kLong);
  auto types = torch::zeros({rows, length}, torch::kLong);
  auto mask = torch::zeros({rows, length}, torch::kBool);
  auto tokenData = tokens.accessor<std::int64_t, 2>();
  auto typeData = types.accessor<std::int64_t, 2>();
  auto maskData = mask.accessor<bool, 2>();
  for (std::int64_t b = 0; b < rows; ++b) {
    const auto i = static_cast<std::size_t>(b);
    ModelEncoding e;
    try {
      e = pairs ? tokenizer.encodePair(texts[i], pairTexts[i], length) : tokenizer.encode(texts[i], length);
    } catch (const InputError& error) {
      throw InputError("row " + std::to_string(b) + ": " + error.what());
    }
    for (int t = 0; t < length; ++t) {
      const auto k = static_cast<std::size_t>(t);
      tokenData[b][t] = e.inputIds[k];
      typeData[b][t] = e.tokenTypeIds[k];
      maskData[b][t] = e.attentionMask[k] != 0;
    }
  }
  Batch batch;
  batch.tokens = tokens;
  batch.mask = mask;
  batch.tokenTypes = types;
  return batch;
}

ModelCheckReport preflightTorchScript(TorchScriptClassifierImpl& model, const Batch& batch,
                                      const std::string& batchDescription) {
  ModelCheckReport r;
  const auto& m = model.manifest();
  r.modelPath = model.modelPath();
  r.manifestPath = m.path;
  fillFromManifest(m, r);
  r.batchDescription = batchDescription;
  r.parameters = model.parameterCount();
  r.trainable = r.parameters > 0;
  const bool wasTraining = model.is_training();
  model.eval();
  try {
    noteArgumentNames(model, r);
    c10::IValue value;
    try {
      torch::NoGradGuard noGrad;
      value = model.runModule(batch, torch::Tensor());
    } catch (const std::exception& e) {
      std::string hint;
      if (m.takes(ModelInput::HeadMask)) {
        hint = "; head_mask is [layers, heads] from the manifest's sizes: check sizes.layers and sizes.heads";
      }
      r.errors.push_back("model '" + model.modelPath() + "': forward failed (inputs " + inputDescription(m, batch) +
                         "): " + ts::summarizeError(e) + hint);
      model.train(wasTraining);
      return r;
    }
    const bool vector = m.isVector();
    const auto rows = vector ? batch.features.size(0) : batch.tokens.size(0);
    const auto length = vector ? 0 : batch.tokens.size(1);
    std::vector<OutputProblem> problems;
    const ForwardOutput out = model.extractOutputs(value, rows, length, problems);
    const auto problemsOf = [&](const std::string& output) {
      std::vector<std::string> list;
      for (const auto& p : problems) {
        if (p.output == output) {
          list.push_back(p.message);
        }
      }
      return list;
    };

    // Logits: without them the model is of no use.
    if (!out.logits.defined()) {
      for (const auto& p : problemsOf("logits")) {
        r.errors.push_back("manifest '" + m.path + "': field 'outputs.logits': " + p);
      }
    } else if (!torch::isfinite(out.logits).all().item<bool>()) {
      r.errors.push_back("model '" + model.modelPath() + "': " + formatOutputPath(m.logits) +
                         ": the logits hold NaN or infinite values on " + batchDescription);
    } else {
      r.provides.push_back({"logits", formatOutputPath(m.logits) + ": " + ts::shapeString(out.logits)});
    }

    // Hidden states.
    if (!m.hiddenStates) {
      r.lacks.push_back({"hidden states", model.unavailable(ModelFeature::HiddenStates)});
    } else if (out.hidden.empty()) {
      const auto list = problemsOf("hidden_states");
      for (const auto& p : list) {
        r.lacks.push_back({"hidden states", p});
      }
      model.markUnavailable(ModelFeature::HiddenStates, list.empty() ? "hidden states unreadable" : list.front());
    } else {
      std::string shapes = formatOutputPath(*m.hiddenStates) + ": " + std::to_string(out.hidden.size()) + " x ";
      if (vector) {
        std::vector<std::int64_t> widths;
        for (const auto& h : out.hidden) {
          widths.push_back(h.size(1));
        }
        shapes += "[" + std::to_string(rows) + ", D] with D = " + ts::shapeString(widths);
      } else {
        shapes += ts::shapeString(out.hidden.front());
      }
      r.provides.push_back({"hidden states", shapes});
      r.hasHiddenStates = true;
    }

    // Attentions.
    if (!vector) {
      if (!m.attentions) {
        r.lacks.push_back({"attentions", model.unavailable(ModelFeature::Attention)});
      } else if (out.attention.empty()) {
        const auto list = problemsOf("attentions");
        for (const auto& p : list) {
          r.lacks.push_back({"attentions", p});
        }
        model.markUnavailable(ModelFeature::Attention, list.empty() ? "attentions unreadable" : list.front());
      } else {
        const auto [low, high] = rowSumRange(out.attention, batch.mask);
        if (std::abs(low - 1.0) > kRowSumTolerance || std::abs(high - 1.0) > kRowSumTolerance) {
          std::ostringstream msg;
          msg << std::setprecision(4) << formatOutputPath(*m.attentions)
              << ": attentions: the row sums over real tokens range from " << low << " to " << high
              << ", not 1: not attention probabilities (pre-softmax scores, or maps summed over heads?)";
          r.lacks.push_back({"attentions", msg.str()});
          model.markUnavailable(ModelFeature::Attention, msg.str());
        } else {
          r.provides.push_back({"attentions", formatOutputPath(*m.attentions) + ": " +
                                                  std::to_string(out.attention.size()) + " x " +
                                                  ts::shapeString(out.attention.front()) + ", rows sum to 1"});
          r.hasAttentions = true;
        }
      }
      // The head gate.
      if (!m.takes(ModelInput::HeadMask)) {
        r.lacks.push_back({"head gate", model.unavailable(ModelFeature::HeadGate)});
      } else if (const auto problem = headGateProblem(model, batch); !problem.empty()) {
        r.lacks.push_back({"head gate", "head_mask: " + problem});
        model.markUnavailable(ModelFeature::HeadGate, "head_mask: " + problem);
      } else {
        r.provides.push_back({"head gate", "head_mask " + ts::shapeString({m.layers, m.heads}) +
                                               ": the logits' gradients reach it"});
        r.hasHeadGate = true;
      }
      r.lacks.push_back({"attention scores", model.unavailable(ModelFeature::AttentionScores)});
      r.lacks.push_back({"word embeddings", model.unavailable(ModelFeature::WordEmbeddings)});
    }

    // The classifier.
    if (const auto off = model.unavailable(ModelFeature::Classifier); !off.empty()) {
      r.lacks.push_back({"classifier", off});
    } else {
      auto& linear = model.classifier();
      r.provides.push_back({"classifier", m.classifierWeight + " " + ts::shapeString(linear->weight) + ", " +
                                              (m.classifierBias.empty() ? std::string("no bias (read as zeros)")
                                                                        : m.classifierBias + " " + ts::shapeString(linear->bias))});
      r.hasClassifier = true;
    }
    if (!r.trainable) {
      r.lacks.push_back({"parameters", "the module has no parameters (frozen with torch.jit.freeze?)"});
    }

    // What is skipped, and why.
    if (!r.hasHiddenStates) {
      const auto why = model.unavailable(ModelFeature::HiddenStates);
      addSkipped(r, "cka", "no hidden states: " + why);
      addSkipped(r, "residual", "no hidden states: " + why);
      addSkipped(r, "probes", "no hidden states: " + why);
      addSkipped(r, kHiddenTerms, "no hidden states: " + why);
    }
    if (vector) {
      addSkipped(r, "attention", "a vector model has no attention");
      addSkipped(r, "heads", "a vector model has no attention heads");
    } else {
      if (!r.hasAttentions) {
        const auto why = model.unavailable(ModelFeature::Attention);
        addSkipped(r, "attention", "no attentions: " + why);
        addSkipped(r, "training term attention_kl", "no attentions: " + why);
      }
      if (!r.hasHeadGate) {
        addSkipped(r, "heads", "no head gate: " + model.unavailable(ModelFeature::HeadGate));
      }
      addSkipped(r, "training term attention_mse", model.unavailable(ModelFeature::AttentionScores));
      addSkipped(r, "augmentation mixup", model.unavailable(ModelFeature::WordEmbeddings));
    }
    if (!r.hasClassifier) {
      addSkipped(r, "knowledge: class geometry", "no classifier: " + model.unavailable(ModelFeature::Classifier));
    }
    if (!r.trainable) {
      addSkipped(r, "distil as the student", "the module has no parameters to train");
    }
  } catch (const std::exception& e) {
    r.errors.push_back("model '" + model.modelPath() + "': the check failed: " + ts::summarizeError(e));
  }
  model.train(wasTraining);
  r.usable = r.errors.empty();
  return r;
}

ModelCheckReport checkModel(const ModelCheckOptions& options) {
  ModelCheckReport report;
  report.modelPath = options.modelPath;
  report.manifestPath = options.manifestPath.empty() ? defaultManifestPath(options.modelPath) : options.manifestPath;
  try {
    auto parsed = readModelManifest(report.manifestPath);
    if (!parsed.manifest) {
      for (const auto& issue : parsed.issues) {
        report.errors.push_back(issue.str(report.manifestPath));
      }
      try {
        (void)loadTorchScriptModule(options.modelPath);
      } catch (const std::exception& e) {
        report.errors.push_back(e.what());
      }
      return report;
    }
    fillFromManifest(*parsed.manifest, report);
    TorchScriptClassifier model{nullptr};
    try {
      model = TorchScriptClassifier(options.modelPath, *parsed.manifest);
    } catch (const std::exception& e) {
      report.errors.push_back(e.what());
      return report;
    }
    std::string description;
    Batch batch;
    try {
      batch = makeCheckBatch(options, model->manifest(), report, description);
    } catch (const std::exception& e) {
      report.errors.push_back(e.what());
      return report;
    }
    auto notes = std::move(report.notes);
    report = preflightTorchScript(*model, batch, description);
    report.notes.insert(report.notes.begin(), notes.begin(), notes.end());
  } catch (const std::exception& e) {
    report.errors.push_back(std::string("the check failed: ") + e.what());
    report.usable = false;
  }
  return report;
}

std::string formatModelCheck(const ModelCheckReport& r) {
  std::ostringstream out;
  out << "model:     " << r.modelPath << "\n"
      << "manifest:  " << r.manifestPath << "\n";
  if (!r.kind.empty()) {
    out << "kind:      " << r.kind << ", " << r.layers << " layers";
    if (r.kind == "text") {
      out << ", " << r.heads << " heads";
    }
    out << ", width " << r.width << ", " << r.classNames.size() << " classes (" << joinNames(r.classNames) << ")";
    if (r.parameters > 0) {
      out << "; " << r.parameters << " parameters";
    }
    out << "\n";
  }
  if (!r.batchDescription.empty()) {
    out << "batch:     " << r.batchDescription << "\n";
  }
  const auto section = [&](const char* title, const std::vector<ModelCheckLine>& lines) {
    if (lines.empty()) {
      return;
    }
    out << title << "\n";
    std::size_t width = 0;
    for (const auto& l : lines) {
      width = std::max(width, l.what.size());
    }
    for (const auto& l : lines) {
      out << "  " << l.what << std::string(width - l.what.size() + 2, ' ') << l.detail << "\n";
    }
  };
  section("provides:", r.provides);
  section("does not provide:", r.lacks);
  // Skipped: the names that share a reason on one line, the reason below them.
  if (!r.skipped.empty()) {
    out << "skipped for this model:\n";
    for (std::size_t i = 0; i < r.skipped.size();) {
      std::string names = r.skipped[i].what;
      std::size_t j = i + 1;
      for (; j < r.skipped.size() && r.skipped[j].detail == r.skipped[i].detail; ++j) {
        names += "; " + r.skipped[j].what;
      }
      out << "  " << names << "\n      " << r.skipped[i].detail << "\n";
      i = j;
    }
  }
  for (const auto& n : r.notes) {
    out << "note: " << n << "\n";
  }
  for (const auto& e : r.errors) {
    out << "error: " << e << "\n";
  }
  if (r.usable) {
    out << "result: usable" << (r.skipped.empty() ? "; every analysis can run" : "; what it lacks is skipped as listed")
        << "\n";
  } else {
    out << "result: NOT usable (" << r.errors.size() << (r.errors.size() == 1 ? " error" : " errors") << ")\n";
  }
  return out.str();
}

} // namespace kdscope::core
