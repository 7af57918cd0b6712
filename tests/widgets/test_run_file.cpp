#include "test_run_file.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/analysis/analyze_run.h"
#include "core/data/dataset.h"
#include "core/record/h5_file.h"
#include "core/record/run_writer.h"

namespace kdscope::widgets::test {

// Task "polarity": 2 classes (neg, pos), 6 eval examples, labels 0 1 0 1 0 1.
//   teacher logits -> predictions 0 1 0 1 1 0: right on 0..3      -> accuracy 4/6
//   kd logits      -> predictions 1 1 0 0 0 0: right on 1, 2, 4   -> accuracy 3/6
//     lost (teacher right, kd wrong): 0 and 3; gained: 4; agreement (1, 2, 5) 3/6
//     recall: teacher 2/3 and 2/3, kd 2/3 (neg) and 1/3 (pos)
//   ce logits      -> predictions 0 0 0 0 0 0: right on 0, 2, 4   -> accuracy 3/6
// Tokens: 4 per example, 3 valid ([CLS] w1 w2 [PAD]). Attention (2 kept examples):
//   teacher 2 layers x 2 heads: head 0 uniform over the 3 valid keys, head 1 one-hot on key 1
//   kd 1 layer x 2 heads: head 0 uniform, head 1 one-hot on key 0
//   -> entropy: head 0 ln 3, head 1 0; kd divergence (the analysis's head_js_best_divergence,
//      for each head of the mapped teacher layer 1 the closest kd head): teacher head 0
//      (uniform) -> kd head 0, 0; teacher head 1 (one-hot on key 1) -> kd head 0,
//      JS(one-hot, uniform) (kd head 1, one-hot on key 0, is ln 2 away)
void writeSmallRun(const QString& path, bool withAnalysis, int variant, std::uint64_t replicateSeed) {
  core::TaskData task;
  task.name = "polarity";
  task.kind = core::TaskKind::Text;
  task.classNames = {"neg", "pos"};
  task.vocab = {"[PAD]", "[UNK]", "[CLS]", "good", "movie", "bad", "plot"};
  task.seqLen = 4;
  task.eval.labels = {0, 1, 0, 1, 0, 1};
  task.eval.tokens = {2, 3, 4, 0, 2, 5, 6, 0, 2, 3, 6, 0, 2, 5, 4, 0, 2, 4, 3, 0, 2, 6, 5, 0};
  task.eval.texts = {"good movie", "bad plot", "good plot", "bad movie", "movie good", "plot bad"};
  {
    const std::string job = replicateSeed == 0 ? std::string(R"({"name":"small"})")
                                               : R"({"name":"small","replicate_seed":)" + std::to_string(replicateSeed) + "}";
    core::RunWriter writer(path.toStdString(), job);
    writer.writeTask(task);

    const std::string ce = R"({"terms":[{"name":"ce","weight":1.0,"label_smoothing":0.0}]})";
    const std::string kd =
        R"({"terms":[{"name":"ce","weight":0.3,"label_smoothing":0.0},{"name":"kd","weight":0.7,"temperature":4.0,"teacher_targets":"full"}]})";
    writer.beginModel("polarity", "teacher", "teacher", R"({"type":"transformer","layers":2,"heads":2,"width":4,"ffn":8})", ce, 1000);
    writer.beginModel("polarity", "ce", "student", R"({"type":"transformer","layers":1,"heads":2,"width":4,"ffn":8})", ce, 300);
    writer.beginModel("polarity", "kd", "student", R"({"type":"transformer","layers":1,"heads":2,"width":4,"ffn":8})", kd, 300);

    const float dl = variant == 1 ? 0.1F : variant == 2 ? 0.2F : 0.0F;
    const double da = variant == 1 ? -0.05 : variant == 2 ? 0.1 : 0.0;
    writer.appendTrainLog("polarity", "teacher", {10, 20, 30}, {1.0F + dl, 0.8F + dl, 0.6F + dl},
                          {{"ce", {1.0F + dl, 0.8F + dl, 0.6F + dl}}});
    writer.appendTrainLog("polarity", "ce", {10, 20}, {0.95F + dl, 0.75F + dl}, {{"ce", {0.95F + dl, 0.75F + dl}}});
    writer.appendTrainLog("polarity", "kd", {10, 20}, {0.9F + dl, 0.7F + dl},
                          {{"ce", {1.1F + dl, 0.9F + dl}}, {"kd", {0.5F + dl, 0.4F + dl}}});
    writer.appendEvalCurve("polarity", "teacher", 1, 15, 0.5 + da, 0.9);
    writer.appendEvalCurve("polarity", "teacher", 2, 30, 4.0 / 6.0 + da, 0.7);
    writer.appendEvalCurve("polarity", "kd", 1, 20, 0.5 + da, 0.8);

    const std::vector<float> teacherLogits = {2, 0, 0, 1, 1, 0, 0, 3, 0, 1, 0.5F, 0};
    std::vector<float> kdLogits = {0, 1, 0, 2, 3, 0, 1, 0, 1, 0, 1, 0};
    if (variant == 2) {
      kdLogits[0] = 1; // example 0 (label 0): now right
      kdLogits[1] = 0;
    }
    const std::vector<float> ceLogits = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};

    const auto attention = [](int layers, int oneHotKey) {
      // [2 examples, layers, 2 heads, 4, 4]
      std::vector<float> a(static_cast<std::size_t>(2 * layers * 2 * 16), 0.0F);
      for (int e = 0; e < 2; ++e) {
        for (int l = 0; l < layers; ++l) {
          for (int q = 0; q < 4; ++q) {
            for (int k = 0; k < 3; ++k) {
              a[static_cast<std::size_t>((((e * layers + l) * 2 + 0) * 4 + q) * 4 + k)] = 1.0F / 3.0F;
            }
            a[static_cast<std::size_t>((((e * layers + l) * 2 + 1) * 4 + q) * 4 + oneHotKey)] = 1.0F;
          }
        }
      }
      return a;
    };
    const struct {
      const char* name;
      const std::vector<float>* logits;
      int layers;
      int oneHotKey;
    } models[] = {{"teacher", &teacherLogits, 2, 1}, {"ce", &ceLogits, 1, 0}, {"kd", &kdLogits, 1, 0}};
    for (const auto& m : models) {
      core::RunWriter::EvalShape shape;
      shape.examples = 6;
      shape.classes = 2;
      shape.attentionExamples = 2;
      shape.layers = static_cast<std::uint64_t>(m.layers);
      shape.heads = 2;
      shape.seqLen = 4;
      writer.createEvalOutputs("polarity", m.name, shape, "mean");
      writer.writeEvalLogits("polarity", m.name, 0, 6, m.logits->data());
      const std::vector<float> a = attention(m.layers, m.oneHotKey);
      writer.writeEvalAttention("polarity", m.name, 0, 2, a.data());
    }
    // Classifier rows: teacher's are orthogonal (cosine 0); kd's are 45 degrees apart.
    writer.writeClassifier("polarity", "teacher", {1, 0, 0, 0, 1, 0}, {0, 0}, 2, 3);
    writer.writeClassifier("polarity", "kd", {1, 0, 1, 1}, {0, 0}, 2, 2);

    writer.setStatus("complete", "");
  }
  if (withAnalysis) {
    // Attention entropy and head divergence come from the analysis engine itself (the window
    // shows what it wrote); the other results are hand-made numbers the views are checked on.
    core::AnalyzeOptions options;
    options.only = {"attention"};
    const core::AnalyzeResult result = core::analyzeRun(path.toStdString(), options, core::CancelToken{}, {});
    if (result.status != core::AnalyzeStatus::Succeeded) {
      throw std::runtime_error("analysing the small run failed: " + result.message);
    }
    core::H5File f(path.toStdString(), core::H5File::Mode::ReadWrite);
    f.writeFloat("/tasks/polarity/analysis/kd/cka", {3, 2}, {1.0F, 0.5F, 0.4F, 0.9F, 0.2F, 0.8F});
    f.writeFloat("/tasks/polarity/analysis/kd/grad_rescale", {6}, {0.9F, 0.8F, 0.7F, 0.6F, 0.5F, 0.4F});
    f.writeFloat("/tasks/polarity/analysis/teacher/head_importance", {2, 2}, {0.1F, 0.9F, 0.6F, 0.4F});
    f.writeFloat("/tasks/polarity/analysis/kd/head_importance", {1, 2}, {0.7F, 0.3F});
    f.writeFloat("/tasks/polarity/analysis/teacher/probe_accuracy", {3}, {0.5F, 0.625F, 0.75F});
    f.writeFloat("/tasks/polarity/analysis/kd/probe_accuracy", {2}, {0.5F, 0.6875F});
  }
}

} // namespace kdscope::widgets::test
