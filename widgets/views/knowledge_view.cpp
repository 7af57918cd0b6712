#include "widgets/views/knowledge_view.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

#include "core/analysis/analysis_results.h"
#include "core/analysis/interval_text.h"
#include "core/analysis/task_intervals.h"
#include "core/analysis/metrics.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

QString controlKind(const std::string& objectiveJson) {
  const QJsonObject root = QJsonDocument::fromJson(QByteArray::fromStdString(objectiveJson)).object();
  double smoothing = 0.0;
  QString kd;
  for (const QJsonValue& value : root.value(QStringLiteral("terms")).toArray()) {
    const QJsonObject term = value.toObject();
    const QString name = term.value(QStringLiteral("name")).toString();
    if (name == QStringLiteral("ce")) {
      smoothing = term.value(QStringLiteral("label_smoothing")).toDouble();
    } else if (name == QStringLiteral("kd") && term.value(QStringLiteral("weight")).toDouble() > 0.0) {
      kd = term.value(QStringLiteral("teacher_targets")).toString() == QStringLiteral("pt") ? QStringLiteral("KD-pt")
                                                                                            : QStringLiteral("KD");
    } else if (name != QStringLiteral("ce")) {
      return {}; // other terms (logit MSE, ...) are not one of Tang et al.'s controls
    }
  }
  if (root.isEmpty()) {
    return {};
  }
  if (!kd.isEmpty()) {
    return kd;
  }
  return smoothing > 0.0 ? QStringLiteral("LS") : QStringLiteral("CE");
}

/// The epsilon of a student's hard-label term and, when it was matched to the teacher, the
/// temperature of the teacher's p^T it was matched at (the objective attribute's
/// "label_smoothing_matched"; NaN when absent).
std::pair<double, double> labelSmoothingOf(const std::string& objectiveJson) {
  const QJsonObject root = QJsonDocument::fromJson(QByteArray::fromStdString(objectiveJson)).object();
  double epsilon = std::nan("");
  for (const QJsonValue& value : root.value(QStringLiteral("terms")).toArray()) {
    const QJsonObject term = value.toObject();
    if (term.value(QStringLiteral("name")).toString() == QStringLiteral("ce")) {
      epsilon = term.value(QStringLiteral("label_smoothing")).toDouble();
    }
  }
  const QJsonValue matched = root.value(QStringLiteral("label_smoothing_matched"));
  // Files written before the temperature was recorded matched at T = 1.
  const double temperature =
      matched.isObject() ? matched.toObject().value(QStringLiteral("temperature")).toDouble(1.0) : std::nan("");
  return {epsilon, temperature};
}

Matrix rowCosine(const std::vector<float>& weight, std::size_t rows, std::size_t cols) {
  Matrix m(rows, rows);
  std::vector<double> norms(rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t k = 0; k < cols; ++k) {
      norms[i] += static_cast<double>(weight[i * cols + k]) * weight[i * cols + k];
    }
    norms[i] = std::sqrt(norms[i]);
  }
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < rows; ++j) {
      double dot = 0.0;
      for (std::size_t k = 0; k < cols; ++k) {
        dot += static_cast<double>(weight[i * cols + k]) * weight[j * cols + k];
      }
      m(i, j) = norms[i] > 0 && norms[j] > 0 ? dot / (norms[i] * norms[j]) : std::nan("");
    }
  }
  return m;
}

Matrix meanClassProbability(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                            std::size_t classes) {
  const std::vector<double> p = core::analysis::softmax(logits, classes);
  Matrix m(classes, classes);
  std::vector<double> count(classes, 0.0);
  for (std::size_t n = 0; n < labels.size(); ++n) {
    const auto y = static_cast<std::size_t>(labels[n]);
    count[y] += 1.0;
    for (std::size_t j = 0; j < classes; ++j) {
      m(y, j) += p[n * classes + j];
    }
  }
  for (std::size_t i = 0; i < classes; ++i) {
    for (std::size_t j = 0; j < classes; ++j) {
      m(i, j) = count[i] > 0 ? m(i, j) / count[i] : std::nan("");
    }
  }
  return m;
}

double offDiagonalCorrelation(const Matrix& a, const Matrix& b) {
  if (a.rows != b.rows || a.cols != b.cols || a.rows != a.cols) {
    return std::nan("");
  }
  std::vector<double> x;
  std::vector<double> y;
  for (std::size_t i = 0; i < a.rows; ++i) {
    for (std::size_t j = 0; j < a.cols; ++j) {
      if (i != j && !std::isnan(a(i, j)) && !std::isnan(b(i, j))) {
        x.push_back(a(i, j));
        y.push_back(b(i, j));
      }
    }
  }
  if (x.size() < 2) {
    return std::nan("");
  }
  double mx = 0.0;
  double my = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(y.size());
  double sxy = 0.0;
  double sxx = 0.0;
  double syy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : std::nan("");
}

KnowledgeView::KnowledgeView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Vertical, body());

  auto* top = new QWidget(split);
  auto* topLayout = new QHBoxLayout(top);
  topLayout->setContentsMargins(0, 0, 0, 0);
  auto* gainBox = new QWidget(top);
  auto* gainLayout = new QVBoxLayout(gainBox);
  gainLayout->setContentsMargins(0, 0, 0, 0);
  gainLayout->addWidget(new QLabel(tr("<b>Gain decomposition</b> (control students, Tang et al.)"), gainBox));
  m_gains = new QTableWidget(0, 4, gainBox);
  m_gains->setObjectName(QStringLiteral("knowledgeGainTable"));
  m_gains->setHorizontalHeaderLabels({tr("Quantity"), tr("Students"), tr("Value"), tr("95% interval")});
  m_gains->horizontalHeaderItem(3)->setToolTip(
      tr("Percentile bootstrap over the eval examples of this run, paired (every control student on the same "
         "resample); written by 'kdscope analyze'. Over replicates: see the study summary."));
  m_gains->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_gains->verticalHeader()->hide();
  m_gains->setEditTriggers(QAbstractItemView::NoEditTriggers);
  gainLayout->addWidget(m_gains, 1);
  m_gainNote = new QLabel(gainBox);
  m_gainNote->setWordWrap(true);
  gainLayout->addWidget(m_gainNote);
  topLayout->addWidget(gainBox, 2);
  m_weights = new PlotWidget(top);
  m_weights->setObjectName(QStringLiteral("knowledgeWeightPlot"));
  topLayout->addWidget(m_weights, 3);

  auto* bottom = new QWidget(split);
  auto* bottomLayout = new QGridLayout(bottom);
  bottomLayout->setContentsMargins(0, 0, 0, 0);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Class similarity:"), bottom));
  m_similarityKind = new QComboBox(bottom);
  m_similarityKind->addItem(tr("cosine of classifier weight rows"));
  m_similarityKind->addItem(tr("mean probability of class j over examples of class i"));
  controls->addWidget(m_similarityKind);
  m_geometry = new QLabel(bottom);
  controls->addWidget(m_geometry, 1);
  bottomLayout->addLayout(controls, 0, 0, 1, 2);
  m_teacherSimilarity = new PlotWidget(bottom);
  m_studentSimilarity = new PlotWidget(bottom);
  bottomLayout->addWidget(m_teacherSimilarity, 1, 0);
  bottomLayout->addWidget(m_studentSimilarity, 1, 1);
  bottomLayout->setRowStretch(1, 1);
  layout->addWidget(split);

  connect(m_similarityKind, &QComboBox::currentIndexChanged, this, [this] {
    try {
      fillSimilarity();
    } catch (const std::exception& error) {
      m_teacherSimilarity->setMessage(QString::fromUtf8(error.what()));
    }
  });
}

QString KnowledgeView::geometryText() const { return m_geometry->text(); }

void KnowledgeView::clearView() {
  m_gains->setRowCount(0);
  m_gainNote->clear();
  m_geometry->clear();
  m_teacherSimilarity->clear();
  m_studentSimilarity->clear();
  m_weights->clear();
}

void KnowledgeView::populate() {
  fillGains();
  fillSimilarity();
  fillWeights();
}

void KnowledgeView::fillGains() {
  const RunDocument& run = *context().run;
  const core::TaskSummary* task = run.task(context().task);
  std::map<QString, std::pair<QString, double>> control; // kind -> (student, accuracy)
  std::string lsObjective;                                // the LS control's objective attribute
  for (const core::ModelSummary& model : task->models) {
    if (model.role == "teacher" || model.evalAccuracy < 0.0) {
      continue;
    }
    const QString kind = controlKind(model.objectiveJson);
    if (!kind.isEmpty() && control.count(kind) == 0) {
      control[kind] = {QString::fromStdString(model.name), model.evalAccuracy};
      if (kind == QStringLiteral("LS")) {
        lsObjective = model.objectiveJson;
      }
    }
  }
  const auto row = [&](const QString& what, const QString& who, double value) {
    const int r = m_gains->rowCount();
    m_gains->insertRow(r);
    m_gains->setItem(r, 0, new QTableWidgetItem(what));
    m_gains->setItem(r, 1, new QTableWidgetItem(who));
    auto* cell = new QTableWidgetItem(formatNumber(value));
    cell->setToolTip(QString::number(value, 'g', 17));
    m_gains->setItem(r, 2, cell);
  };
  const double nan = std::nan("");
  const auto acc = [&](const QString& kind) { return control.count(kind) ? control[kind].second : nan; };
  const auto who = [&](const QString& kind) { return control.count(kind) ? control[kind].first : QStringLiteral("-"); };
  const core::AnalysisResults& results = run.results();
  const std::string taskName = context().task.toStdString();
  int accuracyRow = 0;
  for (const QString& kind : {QStringLiteral("CE"), QStringLiteral("LS"), QStringLiteral("KD-pt"), QStringLiteral("KD")}) {
    row(tr("accuracy %1").arg(kind), who(kind), acc(kind));
    // Its 95% interval over eval examples (the analysis's "intervals"), or why there is none.
    QString text = control.count(kind) ? tr("not analysed") : tr("no such control");
    if (control.count(kind)) {
      const auto intervals = results.intervals(taskName, control[kind].first.toStdString());
      if (const core::analysis::Interval* a = intervals ? intervals->find(core::analysis::metric::kAccuracy) : nullptr) {
        text = QString::fromStdString(core::analysis::intervalText(*a, 4));
      }
    }
    m_gains->setItem(accuracyRow++, 3, new QTableWidgetItem(text));
  }
  row(tr("gain: universe (LS - CE)"), who("LS") + " - " + who("CE"), acc("LS") - acc("CE"));
  row(tr("gain: instance (KD-pt - LS)"), who("KD-pt") + " - " + who("LS"), acc("KD-pt") - acc("LS"));
  row(tr("gain: domain (KD - KD-pt)"), who("KD") + " - " + who("KD-pt"), acc("KD") - acc("KD-pt"));
  const double kdGain = acc("KD") - acc("CE");
  row(tr("share of KD's gain LS explains"), QString(), kdGain != 0.0 ? (acc("LS") - acc("CE")) / kdGain : nan);
  // The analysis's intervals of the levels (absent before 'kdscope analyze').
  int intervalRow = 4;
  for (const char* level : {"universe", "instance", "domain", "ls_share_of_kd_gain"}) {
    const auto interval = results.numberInterval(taskName, "knowledge", level);
    QString text = tr("not analysed");
    if (interval) {
      text = QString::fromStdString(core::analysis::intervalText(*interval, 4, intervalRow < 7));
      if (intervalRow < 7 && !core::analysis::detectable(*interval)) {
        text += tr(" (%1)").arg(QString::fromLatin1(core::analysis::kNoDetectableDifference));
      }
    }
    if (intervalRow == 7) {
      // The share is a ratio over KD's gain: meaningless when that gain is not detectable.
      const auto total = results.numberInterval(taskName, "knowledge", "total");
      if (total && !core::analysis::detectable(*total)) {
        text += tr(" (not meaningful: KD's gain over CE is not detectable, %1)")
                    .arg(QString::fromStdString(core::analysis::intervalText(*total, 4, true)));
      }
    }
    m_gains->setItem(intervalRow++, 3, new QTableWidgetItem(text));
  }
  if (!lsObjective.empty()) {
    const auto [epsilon, temperature] = labelSmoothingOf(lsObjective);
    row(tr("LS epsilon"), who("LS"), epsilon);
    row(std::isnan(temperature) ? tr("LS epsilon matched at T (not matched: set by hand)")
                                : tr("LS epsilon matched to the teacher's p^T at T"),
        who("LS"), temperature);
  }
  QStringList missing;
  for (const QString& kind : {QStringLiteral("CE"), QStringLiteral("LS"), QStringLiteral("KD-pt"), QStringLiteral("KD")}) {
    if (control.count(kind) == 0) {
      missing << kind;
    }
  }
  m_gainNote->setText(missing.isEmpty() ? QString()
                                        : tr("Missing control students: %1 (add students with lambda 0, label "
                                             "smoothing > 0, teacher_targets \"pt\" as needed; see samples/hierarchy.json)")
                                              .arg(missing.join(QStringLiteral(", "))));
}

void KnowledgeView::fillSimilarity() {
  m_teacherSimilarity->clear();
  m_studentSimilarity->clear();
  m_geometry->clear();
  if (context().run == nullptr) {
    return;
  }
  const auto kind = m_similarityKind->currentIndex() == 0 ? figures::SimilarityKind::ClassifierCosine
                                                          : figures::SimilarityKind::MeanProbability;
  figures::buildSimilarity(*m_teacherSimilarity, *context().run, context().task, context().teacher, kind);
  figures::buildSimilarity(*m_studentSimilarity, *context().run, context().task, context().student, kind);
  if (m_teacherSimilarity->hasHeatmap() && m_studentSimilarity->hasHeatmap()) {
    const auto matrixOf = [](const Heatmap& map) {
      Matrix m(static_cast<std::size_t>(map.rows), static_cast<std::size_t>(map.cols));
      m.values = map.values;
      return m;
    };
    // With its interval where one exists: the mean-probability kind is bootstrapped over eval
    // examples by the analysis; the classifier cosines are one fixed set of weights per run.
    QString interval = tr("no interval: the classifier weights are fixed in one run (an interval only over "
                          "replicates: kdscope info REPLICATE_DIR)");
    if (kind == figures::SimilarityKind::MeanProbability) {
      const auto probs = context().run->results().numberInterval(context().task.toStdString(),
                                                                 context().student.toStdString(),
                                                                 "geometry_agreement_probs");
      interval = probs ? tr("95% interval %1 (%2)")
                             .arg(QString::fromStdString(core::analysis::intervalText(*probs, 3)),
                                  QString::fromLatin1(core::analysis::kOverExamples))
                       : tr("no interval: not analysed ('kdscope analyze' adds it)");
    }
    m_geometry->setText(tr("geometry agreement (correlation of off-diagonal entries, teacher vs %1): %2; %3")
                            .arg(context().student,
                                 formatNumber(offDiagonalCorrelation(matrixOf(m_teacherSimilarity->heatmap()),
                                                                     matrixOf(m_studentSimilarity->heatmap()))),
                                 interval));
  }
}

void KnowledgeView::fillWeights() {
  figures::buildGradRescale(*m_weights, *context().run, context().task, context().teacher, context().student);
}

} // namespace kdscope::widgets
