#pragma once
/// StudySlurmDialog: writes the Slurm scripts of a study (core/study/slurm_script.h, the same
/// files as `kdscope study STUDY --out DIR --slurm`): the study file, its output folder, the
/// resources of each job, a preview of each script as it will be written, and the issues that
/// stop it (the study's own, or an option Slurm would refuse). After writing it shows how to
/// submit them. GUI thread (it parses the study file when its path changes).

#include <QDialog>
#include <QString>

#include <memory>

#include "core/study/slurm_script.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTimer;

namespace kdscope::widgets {

class StudySlurmDialog : public QDialog {
  Q_OBJECT
public:
  explicit StudySlurmDialog(QWidget* parent = nullptr);
  ~StudySlurmDialog() override;

  void setStudyFile(const QString& path);
  void setOutDir(const QString& dir);

  /// Parses the study (when its path changed) and regenerates the preview now, skipping the
  /// debounce; true when the scripts can be written.
  bool updatePreview();
  /// Writes the scripts into OUT/slurm; false, with the reason in message(), when it cannot.
  bool writeScripts();
  /// The issues shown, or how to submit after writing.
  [[nodiscard]] QString message() const;

  // Form access for tests.
  [[nodiscard]] QLineEdit* studyEdit() const { return m_study; }
  [[nodiscard]] QLineEdit* outEdit() const { return m_out; }
  [[nodiscard]] QLineEdit* partitionEdit() const { return m_partition; }
  [[nodiscard]] QLineEdit* timeEdit() const { return m_time; }
  [[nodiscard]] QLineEdit* memEdit() const { return m_mem; }
  [[nodiscard]] QLineEdit* accountEdit() const { return m_account; }
  [[nodiscard]] QLineEdit* executableEdit() const { return m_executable; }
  [[nodiscard]] QSpinBox* cpusSpin() const { return m_cpus; }
  [[nodiscard]] QSpinBox* arrayLimitSpin() const { return m_arrayLimit; }
  [[nodiscard]] QComboBox* previewSelector() const { return m_which; }
  [[nodiscard]] QPlainTextEdit* preview() const { return m_preview; }
  [[nodiscard]] QPushButton* writeButton() const { return m_write; }

Q_SIGNALS:
  /// The scripts were written into `slurmDir` (OUT/slurm).
  void written(const QString& slurmDir);

private:
  void onBrowseStudy();
  void onBrowseOut();
  void showMessage(const QString& text, bool problem);
  [[nodiscard]] core::SlurmOptions slurmOptions() const;

  QLineEdit* m_study = nullptr;
  QLineEdit* m_out = nullptr;
  QLineEdit* m_partition = nullptr;
  QLineEdit* m_time = nullptr;
  QLineEdit* m_mem = nullptr;
  QLineEdit* m_account = nullptr;
  QLineEdit* m_executable = nullptr;
  QSpinBox* m_cpus = nullptr;
  QSpinBox* m_arrayLimit = nullptr;
  QComboBox* m_which = nullptr;
  QPlainTextEdit* m_preview = nullptr;
  QLabel* m_message = nullptr;
  QPushButton* m_write = nullptr;
  QTimer* m_debounce = nullptr;

  QString m_parsedPath; ///< the study file m_spec was parsed from
  std::unique_ptr<core::StudySpec> m_spec;
  QString m_studyIssues;
};

} // namespace kdscope::widgets
