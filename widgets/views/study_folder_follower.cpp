#include "widgets/views/study_folder_follower.h"

#include <QThread>
#include <QTimer>

#include "core/study/study_follow.h"
#include "core/study/summary.h"

namespace kdscope::widgets {

StudyFolderFollower::StudyFolderFollower(const QString& dir, QObject* parent)
    : QObject(parent), m_dir(dir), m_follower(std::make_shared<core::StudyFollower>(dir.toStdString())) {
  m_timer = new QTimer(this);
  connect(m_timer, &QTimer::timeout, this, &StudyFolderFollower::refreshNow);
}

StudyFolderFollower::~StudyFolderFollower() {
  if (m_thread != nullptr) {
    m_thread->wait();
    delete m_thread;
  }
}

void StudyFolderFollower::setInterval(int ms) {
  if (ms <= 0) {
    m_timer->stop();
    return;
  }
  m_timer->start(ms);
}

int StudyFolderFollower::interval() const { return m_timer->isActive() ? m_timer->interval() : 0; }

void StudyFolderFollower::refreshNow() {
  if (m_thread != nullptr) {
    m_again = true;
    return;
  }
  auto follower = m_follower;
  auto result = std::make_shared<core::StudySummary>();
  auto error = std::make_shared<QString>();
  m_result = result;
  m_error = error;
  m_thread = QThread::create([follower, result, error] {
    try {
      *result = follower->refresh();
    } catch (const std::exception& e) {
      *error = QString::fromStdString(e.what());
    }
  });
  connect(m_thread, &QThread::finished, this, &StudyFolderFollower::onFinished);
  m_thread->start();
}

void StudyFolderFollower::onFinished() {
  m_thread->wait();
  delete m_thread;
  m_thread = nullptr;
  const auto result = std::move(m_result);
  const auto error = std::move(m_error);
  if (!error->isEmpty()) {
    Q_EMIT failed(*error);
  } else {
    Q_EMIT refreshed(result);
  }
  if (m_again) {
    m_again = false;
    refreshNow();
  }
}

} // namespace kdscope::widgets
