// The Overview's notes of a run with models from elsewhere (issue #13): what each TorchScript
// model's pre-flight check found missing (its model_check attribute) and the analyses that
// were skipped with their reasons (the analysis group's skipped attribute), shown as the run
// file says them. The run is the hand-made small run of test_run_file.cpp with those two
// attributes written by hand: no LibTorch, no module.
#include <QPlainTextEdit>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include "core/record/h5_file.h"
#include "core/record/run_layout.h"
#include "test_run_file.h"
#include "widgets/shell/run_document.h"
#include "widgets/views/overview_view.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

QPlainTextEdit* notesOf(OverviewView& view) {
  return view.findChild<QPlainTextEdit*>(QStringLiteral("overviewSkipped"));
}

} // namespace

TEST(OverviewNotes, ShowThePreflightLacksAndTheSkippedAnalysesAsRecorded) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const QString path = dir.filePath(QStringLiteral("run.h5"));
  test::writeSmallRun(path, /*withAnalysis=*/true);
  {
    core::H5File file(path.toStdString(), core::H5File::Mode::ReadWrite);
    // The kd student as a TorchScript model without attentions or head_mask (the JSON the
    // engine writes: usable, batch, provides / lacks / skipped as [what, detail] pairs).
    file.setAttr(core::layout::model("polarity", "kd"), core::layout::attr::kModelCheck,
                 R"({"usable": true, "batch": "2 rows", "provides": [["logits", "outputs[0]: [2, 2]"]],
                     "lacks": [["attentions", "outputs[2]: missing"], ["head gate", "the module takes no head_mask"]],
                     "skipped": [["attention", "no attentions"]]})");
    file.setAttr(core::layout::analysis("polarity"), core::layout::attr::kSkipped,
                 std::vector<std::string>{"attention/kd: no attentions: outputs[2]: missing (model 'kd', pre-flight check)",
                                          "heads/kd: no head gate"});
  }
  RunDocument run(path);
  OverviewView view;
  view.setContext(ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd")});
  QPlainTextEdit* notes = notesOf(view);
  ASSERT_NE(notes, nullptr);
  EXPECT_FALSE(notes->isHidden());
  EXPECT_EQ(notes->toPlainText(),
            QStringLiteral("Pre-flight check:\n"
                           "  kd lacks attentions: outputs[2]: missing\n"
                           "  kd lacks head gate: the module takes no head_mask\n"
                           "Analyses skipped:\n"
                           "  attention/kd: no attentions: outputs[2]: missing (model 'kd', pre-flight check)\n"
                           "  heads/kd: no head gate"));
}

TEST(OverviewNotes, HiddenWhenNothingWasSkipped) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const QString path = dir.filePath(QStringLiteral("run.h5"));
  test::writeSmallRun(path, /*withAnalysis=*/false);
  RunDocument run(path);
  OverviewView view;
  view.setContext(ViewContext{&run, QStringLiteral("polarity"), QStringLiteral("teacher"), QStringLiteral("kd")});
  QPlainTextEdit* notes = notesOf(view);
  ASSERT_NE(notes, nullptr);
  EXPECT_TRUE(notes->isHidden());
  EXPECT_TRUE(notes->toPlainText().isEmpty());
}
