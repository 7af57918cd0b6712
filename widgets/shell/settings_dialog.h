#pragma once
/// Settings: what persists between sessions (QSettings): threads, how many jobs run at
/// once, where runs are written, recording defaults for new jobs, and the figure style.
/// SettingsDialog edits them. GUI thread.

#include <QDialog>
#include <QString>

#include "widgets/figures/figure_style.h"

class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSettings;
class QSpinBox;

namespace kdscope::widgets {

class FigureStyleEditor;

struct Settings {
  int torchThreads = 0;  ///< LibTorch intra-op threads; 0 keeps LibTorch's default
  int blasThreads = 1;   ///< OpenBLAS threads (1 avoids two pools spinning against each other)
  int maxConcurrentJobs = 1;
  QString outputRoot;    ///< folder under which each job gets its output folder
  int attentionExamples = 16;
  int logEvery = 10;
  QString pooling = QStringLiteral("mean");
  FigureStyle figure;

  /// Reads from `store`, or from the application's QSettings when null.
  static Settings load(QSettings* store = nullptr);
  void save(QSettings* store = nullptr) const;
  static QString defaultOutputRoot();
};

class SettingsDialog : public QDialog {
  Q_OBJECT
public:
  explicit SettingsDialog(const Settings& settings, QWidget* parent = nullptr);
  [[nodiscard]] Settings settings() const;

private:
  QSpinBox* m_torchThreads = nullptr;
  QSpinBox* m_blasThreads = nullptr;
  QSpinBox* m_concurrent = nullptr;
  QLineEdit* m_outputRoot = nullptr;
  QSpinBox* m_attention = nullptr;
  QSpinBox* m_logEvery = nullptr;
  QComboBox* m_pooling = nullptr;
  FigureStyleEditor* m_figureStyle = nullptr;
};

} // namespace kdscope::widgets
