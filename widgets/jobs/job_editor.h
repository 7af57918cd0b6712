#pragma once
/// JobEditor: a form for the job's tasks, teacher, students and objectives, with the JSON
/// beside it and the list of validation issues below, validated as the user types (a short
/// debounce, then core::parseJob: the same messages as `kdscope run`). Save and load job
/// files. The JSON text is the source of truth; the form edits it and follows it while it
/// parses. GUI thread.

#include <QDialog>
#include <QJsonObject>
#include <QString>

#include <optional>

#include "core/job/job_spec.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTimer;

namespace kdscope::widgets {

class TaskFileForm;

class JobEditor : public QDialog {
  Q_OBJECT
public:
  explicit JobEditor(QWidget* parent = nullptr);

  /// The debounce between the last keystroke and validation.
  static constexpr int kValidateDelayMs = 250;

  /// A starting job: one text task, a small teacher, a CE and a KD student, and the
  /// recording defaults given.
  static QString templateJson(int attentionExamples = 16, int logEvery = 10, const QString& pooling = QStringLiteral("mean"));

  void setJsonText(const QString& text);
  [[nodiscard]] QString jsonText() const;
  /// Loads a job file into the editor; false (with a message box unless quiet) on a read error.
  bool loadFile(const QString& path, bool quiet = false);
  bool saveFile(const QString& path);
  /// Validates now (skipping the debounce); returns whether the job is valid.
  bool validateNow();

  /// The issue lines shown (exactly JobIssue::str()).
  [[nodiscard]] QStringList issueLines() const;
  /// The parsed job when the text is valid (its baseDir is the loaded file's folder).
  [[nodiscard]] std::optional<core::JobSpec> job() const { return m_job; }

  // Form access for tests.
  [[nodiscard]] QLineEdit* nameEdit() const { return m_name; }
  [[nodiscard]] QTableWidget* studentTable() const { return m_students; }
  [[nodiscard]] QSpinBox* teacherLayers() const { return m_teacherLayers; }
  [[nodiscard]] TaskFileForm* taskFileForm() const { return m_taskFile; }

  enum StudentColumn {
    SName, SType, SLayers, SHeads, SWidth, SFfn, SEpochs, SLambda, STemperature, SSmoothing, STargets, SColumnCount
  };

Q_SIGNALS:
  /// Emitted after each validation.
  void validated(bool valid);

private:
  void buildForm(QWidget* form);
  void onTextEdited();
  void formToJson();
  void jsonToForm(const QJsonObject& root);
  void addStudentRow(const QJsonObject& student);
  void onLoad();
  void onSave();

  QPlainTextEdit* m_json = nullptr;
  QListWidget* m_issues = nullptr;
  QLabel* m_status = nullptr;
  QWidget* m_form = nullptr;
  QTimer* m_debounce = nullptr;
  QPushButton* m_accept = nullptr;

  QLineEdit* m_name = nullptr;
  QSpinBox* m_seed = nullptr;
  QListWidget* m_tasks = nullptr;
  QSpinBox* m_maxExamples = nullptr;
  QComboBox* m_teacherType = nullptr;
  QSpinBox* m_teacherLayers = nullptr;
  QSpinBox* m_teacherHeads = nullptr;
  QSpinBox* m_teacherWidth = nullptr;
  QSpinBox* m_teacherFfn = nullptr;
  QSpinBox* m_teacherEpochs = nullptr;
  QSpinBox* m_teacherBatch = nullptr;
  QDoubleSpinBox* m_teacherLr = nullptr;
  QTableWidget* m_students = nullptr;
  TaskFileForm* m_taskFile = nullptr; ///< the first task read from a file (docs/job-format.md)

  bool m_syncing = false; ///< true while code (not the user) changes the form or the text
  std::optional<core::JobSpec> m_job;
  QString m_baseDir;
};

} // namespace kdscope::widgets
