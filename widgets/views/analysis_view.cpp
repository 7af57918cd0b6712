#include "widgets/views/analysis_view.h"

#include <QLabel>
#include <QVBoxLayout>

#include <cmath>
#include <exception>

namespace kdscope::widgets {

QString noAnalysisMessage(const RunDocument& run) {
  return QObject::tr("no analysis yet: run `kdscope analyze %1`").arg(run.path());
}

QString formatNumber(double value, int decimals) {
  return std::isnan(value) ? QStringLiteral("-") : QString::number(value, 'f', decimals);
}

AnalysisView::AnalysisView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_error = new QLabel(this);
  m_error->setWordWrap(true);
  m_error->setStyleSheet(QStringLiteral("color: #D55E00;"));
  m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_error->hide();
  m_body = new QWidget(this);
  layout->addWidget(m_error);
  layout->addWidget(m_body, 1);
}

QString AnalysisView::errorText() const { return m_error->isHidden() ? QString() : m_error->text(); }

void AnalysisView::setContext(const ViewContext& context) {
  m_context = context;
  m_error->clear();
  m_error->hide();
  try {
    clearView();
    if (context.run != nullptr && !context.task.isEmpty()) {
      populate();
    }
  } catch (const std::exception& error) {
    m_error->setText(tr("Cannot show %1: %2").arg(context.task, QString::fromUtf8(error.what())));
    m_error->show();
  } catch (...) {
    m_error->setText(tr("Cannot show %1: unknown error").arg(context.task));
    m_error->show();
  }
}

} // namespace kdscope::widgets
