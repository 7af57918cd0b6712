// The run file's layout, format version 1: paths, attribute names and the JSON codecs.
// Every path is built here (docs/architecture.md, "where do I put a new run-file dataset").
#include "core/record/run_layout.h"

#include <nlohmann/json.hpp>

#include "core/common/error.h"

namespace kdscope::core::layout {

namespace {

using Json = nlohmann::json;

std::string join(const std::string& group, const char* name) { return group + "/" + name; }

} // namespace

std::string root() { return "/"; }
std::string tasks() { return "/tasks"; }
std::string task(const std::string& task) { return tasks() + "/" + task; }
std::string evalLabels(const std::string& t) { return join(task(t), "eval/labels"); }
std::string evalTokens(const std::string& t) { return join(task(t), "eval/tokens"); }
std::string evalText(const std::string& t) { return join(task(t), "eval/text"); }
std::string evalSourceIndex(const std::string& t) { return join(task(t), "eval/source_index"); }
std::string evalGroup(const std::string& t) { return join(task(t), "eval/group"); }
std::string vocab(const std::string& t) { return join(task(t), "vocab"); }
std::string superClassOf(const std::string& t) { return join(task(t), "super_class_of"); }
std::string trainLabels(const std::string& t) { return join(task(t), "train/labels"); }
std::string trainSourceIndex(const std::string& t) { return join(task(t), "train/source_index"); }

std::string models(const std::string& t) { return join(task(t), "models"); }
std::string model(const std::string& t, const std::string& m) { return models(t) + "/" + m; }
std::string modelTrain(const std::string& t, const std::string& m) { return join(model(t, m), "train"); }
std::string modelEval(const std::string& t, const std::string& m) { return join(model(t, m), "eval"); }
std::string trainStep(const std::string& t, const std::string& m) { return join(model(t, m), "train/step"); }
std::string trainLoss(const std::string& t, const std::string& m) { return join(model(t, m), "train/loss"); }
std::string trainTerms(const std::string& t, const std::string& m) { return join(model(t, m), "train/terms"); }
std::string trainTerm(const std::string& t, const std::string& m, const std::string& term) {
  return trainTerms(t, m) + "/" + term;
}
std::string evalCurve(const std::string& t, const std::string& m) { return join(model(t, m), "eval_curve"); }
std::string evalCurveColumn(const std::string& t, const std::string& m, const std::string& column) {
  return evalCurve(t, m) + "/" + column;
}
std::string evalLogits(const std::string& t, const std::string& m) { return join(model(t, m), kEvalLogitsName); }
std::string evalHidden(const std::string& t, const std::string& m) { return join(model(t, m), kEvalHiddenName); }
std::string evalAttention(const std::string& t, const std::string& m) { return join(model(t, m), kEvalAttentionName); }
std::string evalTokenHidden(const std::string& t, const std::string& m) {
  return join(model(t, m), kEvalTokenHiddenName);
}
std::string evalTokenCounts(const std::string& t, const std::string& m) { return join(model(t, m), "eval/token_counts"); }
std::string evalModelTokens(const std::string& t, const std::string& m) { return join(model(t, m), "eval/tokens"); }
std::string modelVocab(const std::string& t, const std::string& m) { return join(model(t, m), "vocab"); }
std::vector<std::string> evalOutputs(const std::string& t, const std::string& m) {
  return {evalLogits(t, m), evalHidden(t, m), evalAttention(t, m), evalTokenHidden(t, m)};
}
std::string classifier(const std::string& t, const std::string& m) { return join(model(t, m), "classifier"); }
std::string classifierWeight(const std::string& t, const std::string& m) { return join(classifier(t, m), "weight"); }
std::string classifierBias(const std::string& t, const std::string& m) { return join(classifier(t, m), "bias"); }
std::string trainRecords(const std::string& t, const std::string& m) { return join(model(t, m), "train_records"); }
std::string trainRecordsEpoch(const std::string& t, const std::string& m) { return join(trainRecords(t, m), "epoch"); }
std::string trainRecordsStep(const std::string& t, const std::string& m) { return join(trainRecords(t, m), "step"); }
std::string trainRecordsValues(const std::string& t, const std::string& m, const std::string& name) {
  return trainRecords(t, m) + "/" + name;
}

std::string analysis(const std::string& t) { return join(task(t), "analysis"); }
std::string analysisOf(const std::string& t, const std::string& who) { return analysis(t) + "/" + who; }
std::string analysisEntry(const std::string& t, const std::string& who, const std::string& entry) {
  return analysisOf(t, who) + "/" + entry;
}
std::string knowledge(const std::string& t) { return analysisOf(t, "knowledge"); }
std::string child(const std::string& group, const std::string& name) { return group + "/" + name; }

// ---- Codecs ---------------------------------------------------------------------------

std::string encodeObjective(const ObjectiveSpec& objective) {
  Json terms = Json::array();
  terms.push_back({{"name", "ce"},
                   {"weight", 1.0 - objective.lambda},
                   {"label_smoothing", objective.labelSmoothing},
                   {"formula", "-sum_c target_c log q_c, target = (1-eps) onehot(y) + eps/C"},
                   {"reduction", "mean over examples"}});
  if (objective.lambda > 0.0) {
    terms.push_back({{"name", "kd"},
                     {"weight", objective.lambda},
                     {"temperature", objective.temperature},
                     {"t_squared", objective.tSquared},
                     {"teacher_targets", objective.teacherTargets},
                     {"formula", objective.tSquared ? "T^2 * KL(p^T || q^T)" : "KL(p^T || q^T)"},
                     {"reduction", "sum over classes, mean over examples (batchmean)"}});
  }
  if (objective.logitMse > 0.0) {
    terms.push_back({{"name", "logit_mse"},
                     {"weight", objective.logitMse},
                     {"formula", "(z_s - z_t)^2"},
                     {"reduction", "mean over classes and examples"}});
  }
  // Intermediate terms: each the mean over the layer map's pairs (docs/methods.md).
  const auto intermediate = [&terms](const char* name, double weight, const char* formula, const char* reduction) {
    if (weight > 0.0) {
      terms.push_back({{"name", name}, {"weight", weight}, {"formula", formula}, {"reduction", reduction}});
    }
  };
  const char* tokenMean = "mean over non-padding tokens of the batch, then over mapped layer pairs";
  intermediate("hidden_mse", objective.hiddenMse, "mean_d (W h_s - h_t)^2", tokenMean);
  intermediate("hidden_cosine", objective.hiddenCosine, "1 - cos(W h_s, h_t)", tokenMean);
  intermediate("pkd", objective.pkd, "|| W h_s / |W h_s| - h_t / |h_t| ||^2 of the [CLS] states",
               "mean over examples, then over mapped layer pairs");
  intermediate("attention_kl", objective.attentionKl,
               "KL(teacher row || student row) over non-padding keys (head-averaged maps when head counts differ)",
               "mean over non-padding query rows, heads and examples, then over mapped attention layers");
  intermediate("attention_mse", objective.attentionMse,
               "(s_s - s_t)^2 of pre-softmax scores (head-averaged when head counts differ)",
               "mean over real (query, key) pairs, heads and examples, then over mapped attention layers");
  intermediate("infonce", objective.infoNce,
               "-(log B + mean_i (S[i,i] - logsumexp_j S[i,j])), S[i,j] = g_s(s_i) . g_t(t_j) on token-mean states",
               "one value per batch, mean over mapped layer pairs");
  if (objective.miAlpha > 0.0) {
    terms.push_back({{"name", "mi_alpha"},
                     {"weight", objective.miAlpha},
                     {"alpha", objective.alpha},
                     {"formula", "-I_alpha (Poole et al. 2019), leave-one-out batch estimate, learned baseline b_i"},
                     {"reduction", "one value per batch, mean over mapped layer pairs"}});
  }
  const Json j = {{"total", "sum of weight * term"}, {"terms", terms}};
  return j.dump();
}

RecordedObjective decodeObjective(const std::string& text, const std::string& where) {
  const std::string context = where + ": attribute '" + attr::kObjective + "': ";
  RecordedObjective out;
  try {
    const Json j = Json::parse(text);
    if (!j.is_object() || !j.contains("terms") || !j["terms"].is_array()) {
      throw InputError(context + "no \"terms\" array");
    }
    bool onlyCeKd = true;
    for (const Json& term : j["terms"]) {
      if (!term.is_object() || !term.contains("name") || !term["name"].is_string()) {
        throw InputError(context + "a term without a \"name\"");
      }
      const std::string name = term["name"].get<std::string>();
      if (name == "ce") {
        out.labelSmoothing = term.value("label_smoothing", 0.0);
      } else if (name == "kd") {
        out.hasKd = true;
        out.lambda = term.value("weight", 0.0);
        out.temperature = term.value("temperature", 1.0);
        out.tSquared = term.value("t_squared", true);
        out.ptTargets = term.value("teacher_targets", std::string("full")) == "pt";
      } else if (name == "logit_mse") {
        out.logitMse = term.value("weight", 0.0);
        onlyCeKd = false;
      } else {
        onlyCeKd = false;
      }
    }
    if (j.contains("label_smoothing_matched") && j["label_smoothing_matched"].is_object()) {
      const Json& matched = j["label_smoothing_matched"];
      out.labelSmoothingMatched = true;
      // Files written before the temperature was recorded matched at T = 1.
      out.labelSmoothingMatchTemperature = matched.value("temperature", 1.0);
    }
    out.pure = onlyCeKd && !j.contains("intermediate") && !j.contains("augmentation") && !j.contains("teacher");
  } catch (const InputError&) {
    throw;
  } catch (const Json::exception& e) {
    // Not JSON, or a field of the wrong type (json's type_error): say which.
    throw InputError(context + e.what());
  }
  return out;
}

std::string withMatchedLabelSmoothing(const std::string& objectiveText, double epsilon, double temperature,
                                      const std::string& where) {
  Json j;
  try {
    j = Json::parse(objectiveText);
  } catch (const Json::exception& e) {
    throw InputError(where + ": attribute '" + attr::kObjective + "': " + e.what());
  }
  if (!j.is_object()) {
    throw InputError(where + ": attribute '" + attr::kObjective + "': not a JSON object");
  }
  j["label_smoothing_matched"] = {
      {"epsilon", epsilon},
      {"temperature", temperature},
      {"rule", "eps = C E[1 - p^T_y] / (C - 1), p^T = softmax(z_t / T), over the teacher's train-split outputs"}};
  return j.dump();
}

std::string encodeArchitecture(const ArchitectureSpec& spec, const ArchitectureContext& context) {
  Json j;
  j["type"] = spec.type;
  j["dropout"] = spec.dropout;
  j["classes"] = context.classes;
  if (spec.type == "transformer") {
    j["layers"] = spec.layers;
    j["heads"] = spec.heads;
    j["width"] = spec.width;
    j["ffn"] = spec.ffn;
    j["vocab"] = context.vocab;
    j["max_len"] = context.maxLen;
    j["norm"] = "pre-layernorm";
    j["pooling"] = "[CLS] state after the final LayerNorm";
  } else {
    j["input_dim"] = context.inputDim;
    j["hidden"] = spec.hidden;
    j["layers"] = spec.hidden.size();
  }
  return j.dump();
}

ArchitectureSpec decodeArchitecture(const std::string& text, const std::string& where) {
  const std::string context = where + ": attribute '" + attr::kArchitecture + "': ";
  try {
    const Json j = Json::parse(text);
    ArchitectureSpec spec;
    spec.type = j.at("type").get<std::string>();
    spec.dropout = j.value("dropout", 0.0);
    if (spec.type == "transformer") {
      spec.layers = j.at("layers").get<int>();
      spec.heads = j.at("heads").get<int>();
      spec.width = j.at("width").get<int>();
      spec.ffn = j.at("ffn").get<int>();
    } else if (spec.type == "mlp") {
      spec.hidden = j.at("hidden").get<std::vector<int>>();
    } else {
      throw InputError(context + "unknown model type '" + spec.type + "' (known: transformer, mlp)");
    }
    return spec;
  } catch (const InputError&) {
    throw;
  } catch (const Json::exception& e) {
    throw InputError(context + e.what());
  }
}

} // namespace kdscope::core::layout
