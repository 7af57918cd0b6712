#pragma once
/// KnowledgeView: Tang et al.'s three levels of teacher knowledge. The gain decomposition
/// from control students found by their objectives (CE, LS, KD-pt, KD); class-similarity
/// matrices of teacher and student (cosine of classifier rows, or mean probability of
/// class j over examples of class i) with their off-diagonal correlation; and the instance
/// weight w (/analysis/<student>/grad_rescale) against the teacher's confidence p_y.
/// GUI thread.

#include "widgets/views/analysis_view.h"

class QComboBox;
class QLabel;
class QTableWidget;

namespace kdscope::widgets {

class PlotWidget;

/// Which control a student is, from its objective JSON: "CE", "LS", "KD", "KD-pt" or empty.
QString controlKind(const std::string& objectiveJson);

/// Cosine similarity between the rows of a [C, D] matrix.
Matrix rowCosine(const std::vector<float>& weight, std::size_t rows, std::size_t cols);
/// Mean softmax probability (T = 1) of class j over the examples of class i, [C, C].
Matrix meanClassProbability(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                            std::size_t classes);
/// Pearson correlation of the off-diagonal entries of two square matrices of one size.
double offDiagonalCorrelation(const Matrix& a, const Matrix& b);

class KnowledgeView : public AnalysisView {
  Q_OBJECT
public:
  explicit KnowledgeView(QWidget* parent = nullptr);

  [[nodiscard]] QTableWidget* gainTable() const { return m_gains; }
  [[nodiscard]] PlotWidget* teacherSimilarity() const { return m_teacherSimilarity; }
  [[nodiscard]] PlotWidget* studentSimilarity() const { return m_studentSimilarity; }
  [[nodiscard]] PlotWidget* weightPlot() const { return m_weights; }
  [[nodiscard]] QString geometryText() const;

protected:
  void populate() override;
  void clearView() override;

private:
  void fillGains();
  void fillSimilarity();
  void fillWeights();

  QTableWidget* m_gains = nullptr;
  QLabel* m_gainNote = nullptr;
  QComboBox* m_similarityKind = nullptr;
  QLabel* m_geometry = nullptr;
  PlotWidget* m_teacherSimilarity = nullptr;
  PlotWidget* m_studentSimilarity = nullptr;
  PlotWidget* m_weights = nullptr;
};

} // namespace kdscope::widgets
