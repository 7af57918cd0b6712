#pragma once
/// StudyFolderFollower: follows a study's output folder while other processes (a Slurm array's
/// tasks, on this machine or on others that share the folder) write its cells. Each refresh
/// runs core::StudyFollower on a thread of its own (it opens run files, and a cell being
/// written is only lock-checked), one at a time; a timer asks for one every interval. The
/// result arrives on the thread the object lives on (the GUI thread).

#include <QObject>
#include <QString>

#include <memory>

class QThread;
class QTimer;

namespace kdscope::core {
class StudyFollower;
struct StudySummary;
} // namespace kdscope::core

namespace kdscope::widgets {

class StudyFolderFollower : public QObject {
  Q_OBJECT
public:
  explicit StudyFolderFollower(const QString& dir, QObject* parent = nullptr);
  /// Waits for a refresh that is running (it reads a few small files).
  ~StudyFolderFollower() override;

  [[nodiscard]] const QString& dir() const { return m_dir; }
  /// Polls every `ms` milliseconds; 0 stops polling (refreshNow still works).
  void setInterval(int ms);
  [[nodiscard]] int interval() const;
  /// Starts a refresh now, or one more right after the one that is running.
  void refreshNow();
  [[nodiscard]] bool busy() const { return m_thread != nullptr; }

Q_SIGNALS:
  /// A refresh finished: what is on disk now.
  void refreshed(std::shared_ptr<const kdscope::core::StudySummary> summary);
  /// A refresh failed (no study.json yet, or not a valid study): the message names the file.
  void failed(const QString& message);

private:
  void onFinished();

  QString m_dir;
  std::shared_ptr<core::StudyFollower> m_follower;
  QTimer* m_timer = nullptr;
  QThread* m_thread = nullptr;
  bool m_again = false;
  std::shared_ptr<core::StudySummary> m_result;
  std::shared_ptr<QString> m_error;
};

} // namespace kdscope::widgets
