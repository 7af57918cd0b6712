#pragma once
/// ExamplesView: a sortable, filterable table of eval examples (lost: teacher right and
/// student wrong; gained: the reverse; or all), from eval/logits. Selecting one shows its
/// text, both models' probabilities per class, and its attention (when kept). Beside the
/// table, the loss pattern the analysis wrote: per factor (teacher confidence and entropy,
/// input length, gold class) the lost examples against the rest with an effect size, its 95%
/// interval, the test's p and the logistic-regression slope; an effect whose interval holds
/// its null value is marked "no detectable difference". GUI thread.

#include "widgets/views/analysis_view.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;
class QTableWidget;
class QTextBrowser;

namespace kdscope::widgets {

class AttentionPane;
class PlotWidget;

class ExamplesView : public AnalysisView {
  Q_OBJECT
public:
  explicit ExamplesView(QWidget* parent = nullptr);

  enum Column {
    ColIndex, ColKind, ColLabel, ColTeacherPrediction, ColTeacherTrue, ColStudentPrediction, ColStudentTrue, ColText,
    ColumnCount
  };
  enum LossColumn { LossFactor, LossLost, LossRest, LossEffect, LossTest, LossP, LossHolmP, LossLogistic, LossVerdict,
                    LossColumnCount };
  enum class Filter { LostAndGained, Lost, Gained, All };
  void setFilter(Filter filter);
  void setTextFilter(const QString& text);
  /// Selects the example in the table (by eval index), if it is visible.
  bool selectExample(int example);

  [[nodiscard]] QTableView* table() const { return m_table; }
  [[nodiscard]] QSortFilterProxyModel* proxy() const { return m_proxy; }
  [[nodiscard]] QTableWidget* probabilityTable() const { return m_probabilities; }
  [[nodiscard]] QString shownText() const;
  [[nodiscard]] AttentionPane* attentionPane() const { return m_attention; }
  /// The loss pattern: one row per factor, then one per gold class.
  [[nodiscard]] QTableWidget* lossPatternTable() const { return m_lossTable; }
  [[nodiscard]] QLabel* lossPatternSummary() const { return m_lossSummary; }
  [[nodiscard]] PlotWidget* lossPatternPlot() const { return m_lossPlot; }

protected:
  void populate() override;
  void clearView() override;

private:
  void showExample(int example);
  void showLossPattern();

  QComboBox* m_filter = nullptr;
  QLineEdit* m_search = nullptr;
  QStandardItemModel* m_model = nullptr;
  QSortFilterProxyModel* m_proxy = nullptr;
  QTableView* m_table = nullptr;
  QTextBrowser* m_text = nullptr;
  QTableWidget* m_probabilities = nullptr;
  AttentionPane* m_attention = nullptr;
  QLabel* m_lossSummary = nullptr;
  QTableWidget* m_lossTable = nullptr;
  PlotWidget* m_lossPlot = nullptr;
};

} // namespace kdscope::widgets
