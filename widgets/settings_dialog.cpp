#include "widgets/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>

#include <memory>

namespace kdscope::widgets {

QString Settings::defaultOutputRoot() { return QDir::home().filePath(QStringLiteral("kdscope-runs")); }

Settings Settings::load(QSettings* store) {
  std::unique_ptr<QSettings> own;
  if (store == nullptr) {
    own = std::make_unique<QSettings>();
    store = own.get();
  }
  Settings s;
  s.torchThreads = store->value(QStringLiteral("jobs/torch_threads"), s.torchThreads).toInt();
  s.blasThreads = store->value(QStringLiteral("jobs/blas_threads"), s.blasThreads).toInt();
  s.maxConcurrentJobs = std::max(1, store->value(QStringLiteral("jobs/max_concurrent"), s.maxConcurrentJobs).toInt());
  s.outputRoot = store->value(QStringLiteral("jobs/output_root"), defaultOutputRoot()).toString();
  s.attentionExamples = store->value(QStringLiteral("recording/attention_examples"), s.attentionExamples).toInt();
  s.logEvery = store->value(QStringLiteral("recording/log_every"), s.logEvery).toInt();
  s.pooling = store->value(QStringLiteral("recording/pooling"), s.pooling).toString();
  s.figure.gradient = store->value(QStringLiteral("figures/gradient"), QStringLiteral("viridis")).toString() ==
                              QStringLiteral("cividis")
                          ? Gradient::Cividis
                          : Gradient::Viridis;
  s.figure.lineWidth = store->value(QStringLiteral("figures/line_width"), s.figure.lineWidth).toDouble();
  s.figure.fontPointSize = store->value(QStringLiteral("figures/font_size"), s.figure.fontPointSize).toInt();
  return s;
}

void Settings::save(QSettings* store) const {
  std::unique_ptr<QSettings> own;
  if (store == nullptr) {
    own = std::make_unique<QSettings>();
    store = own.get();
  }
  store->setValue(QStringLiteral("jobs/torch_threads"), torchThreads);
  store->setValue(QStringLiteral("jobs/blas_threads"), blasThreads);
  store->setValue(QStringLiteral("jobs/max_concurrent"), maxConcurrentJobs);
  store->setValue(QStringLiteral("jobs/output_root"), outputRoot);
  store->setValue(QStringLiteral("recording/attention_examples"), attentionExamples);
  store->setValue(QStringLiteral("recording/log_every"), logEvery);
  store->setValue(QStringLiteral("recording/pooling"), pooling);
  store->setValue(QStringLiteral("figures/gradient"),
                  figure.gradient == Gradient::Cividis ? QStringLiteral("cividis") : QStringLiteral("viridis"));
  store->setValue(QStringLiteral("figures/line_width"), figure.lineWidth);
  store->setValue(QStringLiteral("figures/font_size"), figure.fontPointSize);
  store->sync();
}

SettingsDialog::SettingsDialog(const Settings& settings, QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Settings"));
  auto* layout = new QVBoxLayout(this);

  auto* jobs = new QGroupBox(tr("Jobs"), this);
  auto* jobsForm = new QFormLayout(jobs);
  m_torchThreads = new QSpinBox(jobs);
  m_torchThreads->setRange(0, 256);
  m_torchThreads->setSpecialValueText(tr("LibTorch default"));
  m_torchThreads->setValue(settings.torchThreads);
  m_blasThreads = new QSpinBox(jobs);
  m_blasThreads->setRange(1, 256);
  m_blasThreads->setValue(settings.blasThreads);
  m_concurrent = new QSpinBox(jobs);
  m_concurrent->setRange(1, 16);
  m_concurrent->setValue(settings.maxConcurrentJobs);
  auto* outputRow = new QHBoxLayout;
  m_outputRoot = new QLineEdit(settings.outputRoot, jobs);
  auto* browse = new QPushButton(tr("..."), jobs);
  outputRow->addWidget(m_outputRoot, 1);
  outputRow->addWidget(browse);
  jobsForm->addRow(tr("LibTorch threads"), m_torchThreads);
  jobsForm->addRow(tr("OpenBLAS threads"), m_blasThreads);
  jobsForm->addRow(tr("Jobs at once"), m_concurrent);
  jobsForm->addRow(tr("Output folder"), outputRow);
  layout->addWidget(jobs);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Output folder"), m_outputRoot->text());
    if (!dir.isEmpty()) {
      m_outputRoot->setText(dir);
    }
  });

  auto* recording = new QGroupBox(tr("Recording defaults for new jobs"), this);
  auto* recordingForm = new QFormLayout(recording);
  m_attention = new QSpinBox(recording);
  m_attention->setRange(0, 100000);
  m_attention->setValue(settings.attentionExamples);
  m_logEvery = new QSpinBox(recording);
  m_logEvery->setRange(1, 100000);
  m_logEvery->setValue(settings.logEvery);
  m_pooling = new QComboBox(recording);
  m_pooling->addItems({QStringLiteral("mean"), QStringLiteral("cls")});
  m_pooling->setCurrentText(settings.pooling);
  recordingForm->addRow(tr("Attention examples kept"), m_attention);
  recordingForm->addRow(tr("Log losses every (steps)"), m_logEvery);
  recordingForm->addRow(tr("Hidden-state pooling"), m_pooling);
  layout->addWidget(recording);

  auto* figures = new QGroupBox(tr("Figure style"), this);
  auto* figuresForm = new QFormLayout(figures);
  m_gradient = new QComboBox(figures);
  m_gradient->addItem(QStringLiteral("viridis"), static_cast<int>(Gradient::Viridis));
  m_gradient->addItem(QStringLiteral("cividis"), static_cast<int>(Gradient::Cividis));
  m_gradient->setCurrentIndex(settings.figure.gradient == Gradient::Cividis ? 1 : 0);
  m_lineWidth = new QDoubleSpinBox(figures);
  m_lineWidth->setRange(0.5, 6.0);
  m_lineWidth->setSingleStep(0.5);
  m_lineWidth->setValue(settings.figure.lineWidth);
  m_fontSize = new QSpinBox(figures);
  m_fontSize->setRange(6, 24);
  m_fontSize->setValue(settings.figure.fontPointSize);
  figuresForm->addRow(tr("Heatmap colours"), m_gradient);
  figuresForm->addRow(tr("Line width"), m_lineWidth);
  figuresForm->addRow(tr("Font size (pt)"), m_fontSize);
  layout->addWidget(figures);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  layout->addWidget(buttons);
}

Settings SettingsDialog::settings() const {
  Settings s;
  s.torchThreads = m_torchThreads->value();
  s.blasThreads = m_blasThreads->value();
  s.maxConcurrentJobs = m_concurrent->value();
  s.outputRoot = m_outputRoot->text();
  s.attentionExamples = m_attention->value();
  s.logEvery = m_logEvery->value();
  s.pooling = m_pooling->currentText();
  s.figure.gradient = static_cast<Gradient>(m_gradient->currentData().toInt());
  s.figure.lineWidth = m_lineWidth->value();
  s.figure.fontPointSize = m_fontSize->value();
  return s;
}

} // namespace kdscope::widgets
