#pragma once
/// TaskFileForm: the job editor's group for a task read from the user's own file
/// (docs/job-format.md, "Tasks from your own files"): the file (chosen with a file dialog),
/// its format and fields, the label file of an array, the WordPiece vocabulary; and
/// "Check data", which reads every row off the GUI thread (core::checkTaskFiles) and reports
/// the first bad row by file, line and field. It edits one task object of the job JSON
/// (taskObject / setTaskObject); the JobEditor puts it into the "tasks" array. GUI thread.

#include <QGroupBox>
#include <QJsonObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>
#include <memory>

#include "core/common/cancel.h"
#include "core/job/job_spec.h"

class QCheckBox;
class QComboBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QThread;
class QTimer;

namespace kdscope::widgets {

class TaskFileForm : public QGroupBox {
  Q_OBJECT
public:
  explicit TaskFileForm(QWidget* parent = nullptr);
  ~TaskFileForm() override;

  /// Shows a task object (empty: no file task). Emits nothing.
  void setTaskObject(const QJsonObject& task);
  /// The task object the form describes: the keys of the object last shown (other task
  /// settings such as max_len survive), with the form's keys set, and keys at their default
  /// left out. Empty when no file is given.
  [[nodiscard]] QJsonObject taskObject() const;
  [[nodiscard]] bool hasFile() const;

  /// The folder relative paths are relative to (the job file's); chosen files inside it are
  /// written relative to it, others absolute.
  void setBaseDir(const QString& dir) { m_baseDir = dir; }
  /// Replaces the file dialog (tests): called with the dialog's title and name filter,
  /// returns the chosen path or an empty string.
  void setFileChooser(std::function<QString(const QString& title, const QString& filter)> chooser) {
    m_chooser = std::move(chooser);
  }

  /// Reads every row of the job's task files off the GUI thread; `done` is emitted with the
  /// issues (empty: all good). A second call while one runs is ignored.
  void checkData(const core::JobSpec& job);
  [[nodiscard]] bool checking() const { return m_thread != nullptr; }
  /// Rows the running (or last) check's reader has read so far, as of its last report.
  [[nodiscard]] std::size_t rowsRead() const { return m_rowsRead ? m_rowsRead->load() : 0; }
  /// Stops a running check: the reader stops at its next poll (every 4,096 rows of a text
  /// file, every block of an array), checkStopped is emitted when it has, and no result is
  /// reported.
  void cancelCheck();

  // Access for tests.
  [[nodiscard]] QLineEdit* nameEdit() const { return m_name; }
  [[nodiscard]] QLineEdit* fileEdit() const { return m_file; }
  [[nodiscard]] QComboBox* formatBox() const { return m_format; }
  [[nodiscard]] QLineEdit* textFieldEdit() const { return m_textField; }
  [[nodiscard]] QLineEdit* pairFieldEdit() const { return m_pairField; }
  [[nodiscard]] QLineEdit* featureFieldsEdit() const { return m_featureFields; }
  [[nodiscard]] QLineEdit* labelFieldEdit() const { return m_labelField; }
  [[nodiscard]] QLineEdit* splitFieldEdit() const { return m_splitField; }
  [[nodiscard]] QLineEdit* vocabEdit() const { return m_vocab; }
  [[nodiscard]] QCheckBox* lowerCaseBox() const { return m_lowerCase; }
  [[nodiscard]] QPushButton* browseFileButton() const { return m_browseFile; }
  [[nodiscard]] QPushButton* checkButton() const { return m_check; }
  [[nodiscard]] QLabel* statusLabel() const { return m_status; }

Q_SIGNALS:
  /// The user changed a field (not emitted by setTaskObject).
  void changed();
  /// A check finished: its issues as lines ("tasks[0].file: task file '...': line 3: ...").
  void checked(const QStringList& issues);
  /// The user asked for a check (the editor answers with checkData(job)).
  void checkRequested();
  /// A stopped check's reader has returned, after reading `rows` rows.
  void checkStopped(qulonglong rows);

private:
  QLineEdit* addPath(QFormLayout* form, const QString& label, const QString& filter, QPushButton** button);
  QString chooseFile(const QString& title, const QString& filter) const;
  QString relativeToBase(const QString& path) const;
  void onEdited();

  QLineEdit* m_name = nullptr;
  QLineEdit* m_file = nullptr;
  QComboBox* m_format = nullptr;
  QLineEdit* m_evalFile = nullptr;
  QLineEdit* m_textField = nullptr;
  QLineEdit* m_pairField = nullptr;
  QLineEdit* m_featureFields = nullptr;
  QLineEdit* m_labelField = nullptr;
  QLineEdit* m_idField = nullptr;
  QLineEdit* m_splitField = nullptr;
  QComboBox* m_labelKind = nullptr;
  QSpinBox* m_numClasses = nullptr;
  QLineEdit* m_h5Dataset = nullptr;
  QLineEdit* m_labelFile = nullptr;
  QLineEdit* m_labelColumn = nullptr;
  QLineEdit* m_vocab = nullptr;
  QCheckBox* m_lowerCase = nullptr;
  QPushButton* m_browseFile = nullptr;
  QPushButton* m_check = nullptr;
  QLabel* m_status = nullptr;

  QJsonObject m_shown; ///< the task object last shown (keys the form does not edit survive)
  QString m_baseDir;
  bool m_syncing = false;
  std::function<QString(const QString&, const QString&)> m_chooser;
  QThread* m_thread = nullptr;
  std::shared_ptr<int> m_generation; ///< bumped by cancelCheck, so a late result is dropped
  core::CancelToken m_cancel;        ///< the running check's (a new one per check)
  /// Rows the running check has read (its reader's progress), shown while it reads.
  std::shared_ptr<std::atomic<std::size_t>> m_rowsRead;
  QTimer* m_progressTimer = nullptr;
};

} // namespace kdscope::widgets
