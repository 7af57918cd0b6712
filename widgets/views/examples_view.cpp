#include "widgets/views/examples_view.h"

#include <QBrush>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTableView>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>

#include <cmath>

#include "core/analysis/interval_text.h"
#include "core/analysis/metrics.h"
#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/views/attention_pane.h"

namespace kdscope::widgets {

namespace {

constexpr int kKindRole = Qt::UserRole + 1;
const QString kLost = QStringLiteral("lost");
const QString kGained = QStringLiteral("gained");
const QString kBothRight = QStringLiteral("both right");
const QString kBothWrong = QStringLiteral("both wrong");

/// Filters on the kind column and on text in every column.
class ExampleFilter : public QSortFilterProxyModel {
public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void setKinds(const QStringList& kinds) {
    m_kinds = kinds;
    invalidateFilter();
  }

protected:
  bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
    const QString kind = sourceModel()->index(row, ExamplesView::ColKind, parent).data().toString();
    if (!m_kinds.isEmpty() && !m_kinds.contains(kind)) {
      return false;
    }
    return QSortFilterProxyModel::filterAcceptsRow(row, parent);
  }

private:
  QStringList m_kinds;
};

QStandardItem* numberItem(double value, int decimals = 4) {
  auto* item = new QStandardItem;
  item->setData(value, Qt::DisplayRole); // sorts as a number
  item->setData(QString::number(value, 'g', 17), Qt::ToolTipRole);
  if (decimals >= 0) {
    item->setData(QString::number(value, 'f', decimals), Qt::DisplayRole);
    item->setData(value, Qt::UserRole + 2);
  }
  return item;
}

} // namespace

ExamplesView::ExamplesView(QWidget* parent) : AnalysisView(parent) {
  auto* layout = new QVBoxLayout(body());
  layout->setContentsMargins(0, 0, 0, 0);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Show:"), body()));
  m_filter = new QComboBox(body());
  m_filter->addItem(tr("lost and gained"), static_cast<int>(Filter::LostAndGained));
  m_filter->addItem(tr("lost (teacher right, student wrong)"), static_cast<int>(Filter::Lost));
  m_filter->addItem(tr("gained (teacher wrong, student right)"), static_cast<int>(Filter::Gained));
  m_filter->addItem(tr("all examples"), static_cast<int>(Filter::All));
  controls->addWidget(m_filter);
  m_search = new QLineEdit(body());
  m_search->setPlaceholderText(tr("filter text"));
  m_search->setClearButtonEnabled(true);
  controls->addWidget(m_search, 1);
  layout->addLayout(controls);

  auto* split = new QSplitter(Qt::Vertical, body());
  m_model = new QStandardItemModel(0, ColumnCount, this);
  m_model->setHorizontalHeaderLabels({tr("#"), tr("Kind"), tr("Label"), tr("Teacher pred."), tr("Teacher p(y)"),
                                      tr("Student pred."), tr("Student p(y)"), tr("Text")});
  auto* filter = new ExampleFilter(this);
  m_proxy = filter;
  m_proxy->setSourceModel(m_model);
  m_proxy->setFilterKeyColumn(-1);
  m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
  m_proxy->setSortRole(Qt::UserRole + 2);
  auto* top = new QSplitter(Qt::Horizontal, split);
  m_table = new QTableView(top);
  m_table->setObjectName(QStringLiteral("examplesTable"));
  m_table->setModel(m_proxy);
  m_table->setSortingEnabled(true);
  m_table->sortByColumn(ColIndex, Qt::AscendingOrder); // Qt's default indicator is descending
  m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_table->setSelectionMode(QAbstractItemView::SingleSelection);
  m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_table->horizontalHeader()->setStretchLastSection(true);
  m_table->verticalHeader()->hide();

  auto* pattern = new QWidget(top);
  auto* patternLayout = new QVBoxLayout(pattern);
  patternLayout->setContentsMargins(0, 0, 0, 0);
  m_lossSummary = new QLabel(pattern);
  m_lossSummary->setObjectName(QStringLiteral("examplesLossPatternSummary"));
  m_lossSummary->setWordWrap(true);
  patternLayout->addWidget(m_lossSummary);
  m_lossTable = new QTableWidget(0, LossColumnCount, pattern);
  m_lossTable->setObjectName(QStringLiteral("examplesLossPattern"));
  m_lossTable->setHorizontalHeaderLabels({tr("Factor"), tr("Lost"), tr("Rest"), tr("Effect [95% CI]"), tr("Test"),
                                          tr("p"), tr("Holm p"), tr("Logistic slope [95% CI]"), tr("Verdict")});
  m_lossTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  m_lossTable->verticalHeader()->hide();
  m_lossTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
  patternLayout->addWidget(m_lossTable, 1);
  m_lossPlot = new PlotWidget(pattern);
  m_lossPlot->setObjectName(QStringLiteral("examplesLossPatternPlot"));
  patternLayout->addWidget(m_lossPlot, 1);
  top->setStretchFactor(0, 3);
  top->setStretchFactor(1, 2);

  auto* detail = new QSplitter(Qt::Horizontal, split);
  auto* left = new QWidget(detail);
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  m_text = new QTextBrowser(left);
  m_text->setObjectName(QStringLiteral("examplesText"));
  leftLayout->addWidget(m_text, 1);
  m_probabilities = new QTableWidget(0, 3, left);
  m_probabilities->setObjectName(QStringLiteral("examplesProbabilities"));
  m_probabilities->setHorizontalHeaderLabels({tr("Class"), tr("Teacher p"), tr("Student p")});
  m_probabilities->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_probabilities->verticalHeader()->hide();
  m_probabilities->setEditTriggers(QAbstractItemView::NoEditTriggers);
  leftLayout->addWidget(m_probabilities, 1);
  m_attention = new AttentionPane(detail);
  detail->setStretchFactor(0, 1);
  detail->setStretchFactor(1, 2);
  layout->addWidget(split, 1);

  connect(m_filter, &QComboBox::currentIndexChanged, this,
          [this] { setFilter(static_cast<Filter>(m_filter->currentData().toInt())); });
  connect(m_search, &QLineEdit::textChanged, this, [this](const QString& text) { m_proxy->setFilterFixedString(text); });
  connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
    if (current.isValid()) {
      showExample(m_proxy->index(current.row(), ColIndex).data(Qt::UserRole + 2).toInt());
    }
  });
  setFilter(Filter::LostAndGained);
}

void ExamplesView::setFilter(Filter filter) {
  {
    const QSignalBlocker block(m_filter);
    m_filter->setCurrentIndex(m_filter->findData(static_cast<int>(filter)));
  }
  auto* proxy = static_cast<ExampleFilter*>(m_proxy);
  switch (filter) {
  case Filter::LostAndGained:
    proxy->setKinds({kLost, kGained});
    break;
  case Filter::Lost:
    proxy->setKinds({kLost});
    break;
  case Filter::Gained:
    proxy->setKinds({kGained});
    break;
  case Filter::All:
    proxy->setKinds({});
    break;
  }
}

void ExamplesView::setTextFilter(const QString& text) { m_search->setText(text); }

QString ExamplesView::shownText() const { return m_text->toPlainText(); }

void ExamplesView::clearView() {
  m_lossSummary->clear();
  m_lossTable->setRowCount(0);
  m_lossPlot->clear();
  m_model->removeRows(0, m_model->rowCount());
  m_text->clear();
  m_probabilities->setRowCount(0);
  m_attention->setContext({});
}

void ExamplesView::populate() {
  const RunDocument& run = *context().run;
  const QString& task = context().task;
  if (context().student.isEmpty()) {
    m_text->setPlainText(tr("The task has no student."));
    return;
  }
  const std::vector<float>& t = run.logits(task, context().teacher);
  const std::vector<float>& s = run.logits(task, context().student);
  if (t.empty() || s.empty()) {
    m_text->setPlainText(tr("eval/logits are missing for the teacher or the student."));
    return;
  }
  const std::vector<std::int64_t>& labels = run.labels(task);
  const std::size_t classes = run.numClasses(task);
  const QStringList names = run.classNames(task);
  const auto pt = core::analysis::softmax(t, classes);
  const auto ps = core::analysis::softmax(s, classes);
  const auto predT = core::analysis::predictions(t, classes);
  const auto predS = core::analysis::predictions(s, classes);
  const auto className = [&](std::int64_t c) {
    return c >= 0 && c < names.size() ? names[static_cast<int>(c)] : QString::number(c);
  };
  m_model->setRowCount(static_cast<int>(labels.size()));
  for (std::size_t n = 0; n < labels.size(); ++n) {
    const bool teacherRight = predT[n] == labels[n];
    const bool studentRight = predS[n] == labels[n];
    const QString kind = teacherRight ? (studentRight ? kBothRight : kLost) : (studentRight ? kGained : kBothWrong);
    const int row = static_cast<int>(n);
    auto* index = new QStandardItem(QString::number(n));
    index->setData(static_cast<int>(n), Qt::UserRole + 2);
    m_model->setItem(row, ColIndex, index);
    auto* kindItem = new QStandardItem(kind);
    kindItem->setData(kind, Qt::UserRole + 2);
    m_model->setItem(row, ColKind, kindItem);
    const auto textItem = [](const QString& text) {
      auto* item = new QStandardItem(text);
      item->setData(text, Qt::UserRole + 2);
      return item;
    };
    m_model->setItem(row, ColLabel, textItem(className(labels[n])));
    m_model->setItem(row, ColTeacherPrediction, textItem(className(predT[n])));
    m_model->setItem(row, ColTeacherTrue, numberItem(pt[n * classes + static_cast<std::size_t>(labels[n])]));
    m_model->setItem(row, ColStudentPrediction, textItem(className(predS[n])));
    m_model->setItem(row, ColStudentTrue, numberItem(ps[n * classes + static_cast<std::size_t>(labels[n])]));
    QString text = run.exampleText(task, static_cast<int>(n));
    m_model->setItem(row, ColText, textItem(text.left(200)));
  }
  m_table->resizeColumnsToContents();
  m_attention->setContext(context());
  showLossPattern();
}

bool ExamplesView::selectExample(int example) {
  for (int row = 0; row < m_proxy->rowCount(); ++row) {
    if (m_proxy->index(row, ColIndex).data(Qt::UserRole + 2).toInt() == example) {
      m_table->setCurrentIndex(m_proxy->index(row, ColIndex));
      return true;
    }
  }
  return false;
}

void ExamplesView::showExample(int example) {
  try {
    const RunDocument& run = *context().run;
    const QString& task = context().task;
    const std::size_t classes = run.numClasses(task);
    const QStringList names = run.classNames(task);
    const std::int64_t label = run.labels(task).at(static_cast<std::size_t>(example));
    m_text->setPlainText(tr("Example %1 (label: %2)\n\n%3")
                             .arg(example)
                             .arg(label < names.size() ? names[static_cast<int>(label)] : QString::number(label),
                                  run.exampleText(task, example)));
    const std::vector<float>& t = run.logits(task, context().teacher);
    const std::vector<float>& s = run.logits(task, context().student);
    const std::vector<float> rowT(t.begin() + static_cast<long>(example * classes),
                                  t.begin() + static_cast<long>((example + 1) * classes));
    const std::vector<float> rowS(s.begin() + static_cast<long>(example * classes),
                                  s.begin() + static_cast<long>((example + 1) * classes));
    const auto pt = core::analysis::softmax(rowT, classes);
    const auto ps = core::analysis::softmax(rowS, classes);
    m_probabilities->setRowCount(static_cast<int>(classes));
    for (std::size_t c = 0; c < classes; ++c) {
      const int r = static_cast<int>(c);
      auto* name = new QTableWidgetItem(r < names.size() ? names[r] : QString::number(r));
      if (static_cast<std::int64_t>(c) == label) {
        QFont bold = name->font();
        bold.setBold(true);
        name->setFont(bold);
      }
      m_probabilities->setItem(r, 0, name);
      auto* a = new QTableWidgetItem(QString::number(pt[c], 'f', 4));
      a->setToolTip(QString::number(pt[c], 'g', 17));
      auto* b = new QTableWidgetItem(QString::number(ps[c], 'f', 4));
      b->setToolTip(QString::number(ps[c], 'g', 17));
      m_probabilities->setItem(r, 1, a);
      m_probabilities->setItem(r, 2, b);
    }
    m_attention->setExample(example);
  } catch (const std::exception& error) {
    m_text->setPlainText(tr("Cannot show example %1: %2").arg(example).arg(QString::fromUtf8(error.what())));
  }
}

void ExamplesView::showLossPattern() {
  namespace an = core::analysis;
  const RunDocument& run = *context().run;
  const QString& task = context().task;
  const QString& student = context().student;
  figures::buildLossPattern(*m_lossPlot, run, task, student);
  const auto lp = run.lossPattern(task, student);
  if (!lp) {
    m_lossSummary->setText(tr("Loss pattern: %1").arg(noAnalysisMessage(run)));
    return;
  }
  QString caution;
  if (lp->lost > 0 && lp->lost < 10) {
    caution = tr(" Few lost examples: the tests have little power and the intervals of r are rough.");
  }
  m_lossSummary->setText(tr("Loss pattern of %1: %2 lost examples (teacher right, student wrong) against the %3 "
                            "other eval examples.%4%5 Holm p: adjusted over this pattern's tests (each factor's Mann-Whitney "
                            "test, the class chi-square and the logistic slopes); the per-class Fisher tests are "
                            "not in the family. An effect is \"%6\" when its 95% interval holds its null value or "
                            "its test's p (the Holm p where there is one) is 0.05 or more.")
                             .arg(student)
                             .arg(lp->lost)
                             .arg(lp->examples - lp->lost)
                             .arg(lp->note.empty() ? QString() : QStringLiteral(" ") + QString::fromStdString(lp->note),
                                  caution, noDetectableDifference()));
  const auto text = [](const QString& value, const QString& tip = QString()) {
    auto* item = new QTableWidgetItem(value);
    item->setToolTip(tip.isEmpty() ? value : tip);
    return item;
  };
  const auto slopeOf = [&lp](const std::string& name) -> const an::Coefficient* {
    for (const an::LogisticTerm& t : lp->logistic.terms) {
      if (t.name == name && lp->logistic.converged) {
        return &t.coefficient;
      }
    }
    return nullptr;
  };
  // The Holm p of a slope slopeOf returned (NaN for class indicators: not in the family).
  const auto slopeHolm = [&lp](const an::Coefficient* slope) -> an::AdjustedP {
    for (const an::LogisticTerm& t : lp->logistic.terms) {
      if (&t.coefficient == slope) {
        return t.holm;
      }
    }
    return {};
  };
  const auto addRow = [&](const QString& factor, const QString& lost, const QString& rest, QTableWidgetItem* effect,
                          const QString& test, double p, const an::AdjustedP& holm, const an::Coefficient* slope,
                          bool detectable) {
    const int row = m_lossTable->rowCount();
    m_lossTable->insertRow(row);
    m_lossTable->setItem(row, LossFactor, text(factor));
    m_lossTable->setItem(row, LossLost, text(lost));
    m_lossTable->setItem(row, LossRest, text(rest));
    m_lossTable->setItem(row, LossEffect, effect);
    m_lossTable->setItem(row, LossTest, text(test));
    m_lossTable->setItem(row, LossP, text(formatP(p), QString::number(p, 'g', 17)));
    m_lossTable->setItem(row, LossHolmP,
                         std::isfinite(holm.p)
                             ? text(formatP(holm.p), tr("Holm-adjusted over %1 tests: %2").arg(holm.family).arg(holm.p, 0, 'g', 17))
                             : text(QStringLiteral("-"), tr("not in the Holm family")));
    // A slope whose interval holds 0 (or whose Holm p, where it has one, is not below 0.05)
    // is marked "n.d." and greyed like the row's other numbers.
    const bool slopeDetectable =
        slope != nullptr && an::detectable(slope->value, an::verdictP(slope->pValue, slopeHolm(slope)));
    m_lossTable->setItem(row, LossLogistic,
                         slope == nullptr ? text(QStringLiteral("-"), tr("not in the logistic regression"))
                                          : text(formatInterval(slope->value.estimate, &slope->value, 3, true) +
                                                     (slopeDetectable ? QString() : QStringLiteral(" n.d.")),
                                                 tr("log odds of lost per %1; Wald p = %2%3")
                                                     .arg(factor.startsWith(tr("class")) ? tr("example of this class against "
                                                                                               "the reference class")
                                                                                         : tr("sd of the factor"),
                                                          formatP(slope->pValue),
                                                          std::isfinite(slopeHolm(slope).p)
                                                              ? tr(", Holm p = %1").arg(formatP(slopeHolm(slope).p))
                                                              : QString())));
    if (slope != nullptr && !slopeDetectable) {
      QTableWidgetItem* item = m_lossTable->item(row, LossLogistic);
      QFont font = item->font();
      font.setItalic(true);
      item->setFont(font);
      item->setForeground(QBrush(QColor(110, 110, 110)));
    }
    auto* verdict = text(detectable ? tr("lost examples differ") : noDetectableDifference());
    if (!detectable) {
      for (auto* item : {verdict, effect}) {
        QFont font = item->font();
        font.setItalic(true);
        item->setFont(font);
        item->setForeground(QBrush(QColor(110, 110, 110)));
      }
    }
    m_lossTable->setItem(row, LossVerdict, verdict);
  };
  for (const an::ContinuousFactor& f : lp->factors) {
    const an::Interval& r = f.test.rankBiserial;
    auto* effect = text(tr("r = %1").arg(formatInterval(r.estimate, &r, 3, true)),
                        intervalTooltip(r) + tr("\nrank-biserial r = P(lost > rest) - P(lost < rest)"));
    addRow(QString::fromStdString(f.name).replace(QLatin1Char('_'), QLatin1Char(' ')),
           tr("median %1").arg(formatNumber(f.medianLost, 3)), tr("median %1").arg(formatNumber(f.medianRest, 3)),
           effect, f.test.exact ? tr("Mann-Whitney U (exact)") : tr("Mann-Whitney U (normal)"), f.test.pValue,
           f.holm, slopeOf(f.name), an::detectable(r, an::verdictP(f.test.pValue, f.holm)));
  }
  if (!lp->factors.empty()) {
    const an::ClassFactor& c = lp->goldClass;
    auto* effect = text(tr("V = %1").arg(formatInterval(c.cramersV.estimate, &c.cramersV, 3)),
                        intervalTooltip(c.cramersV) + tr("\nCramér's V of the class x lost table"));
    // V is never below 0: the chi-square test decides (p < 0.05).
    addRow(tr("gold class"), QString(), QString(), effect,
           tr("chi-square %1 (df %2)").arg(formatNumber(c.chiSquare.chiSquare, 2)).arg(c.chiSquare.df),
           c.chiSquare.pValue, c.chiSquareHolm, nullptr, an::verdictP(c.chiSquare.pValue, c.chiSquareHolm) < 0.05);
    const QStringList names = run.classNames(task);
    for (std::size_t k = 0; k < c.lost.size(); ++k) {
      const an::Interval& odds = c.oddsRatio[k];
      const bool holdsOne = !(odds.lo > 1.0 || odds.hi < 1.0);
      const QString name = static_cast<int>(k) < names.size() ? names[static_cast<int>(k)] : QString::number(k);
      auto* oddsItem = text(tr("OR = %1").arg(formatInterval(odds.estimate, &odds, 2)),
                            tr("odds ratio of being lost, this class against the others; Woolf interval"));
      addRow(tr("class %1").arg(name), QString::number(c.lost[k]), QString::number(c.rest[k]), oddsItem,
             tr("Fisher exact"), c.fisher[k].pValue, an::AdjustedP{}, slopeOf("class:" + std::to_string(k)),
             !holdsOne && !std::isnan(odds.lo) && c.fisher[k].pValue < 0.05);
    }
  }
}

} // namespace kdscope::widgets
