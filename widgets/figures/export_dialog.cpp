#include "widgets/figures/export_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPixmap>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>

#include "widgets/figures/figure_style_editor.h"

namespace kdscope::widgets {

ExportDialog::ExportDialog(Mode mode, const QStringList& figures, const FigureStyle& style, int openRuns,
                           QWidget* parent)
    : QDialog(parent), m_mode(mode) {
  setObjectName(QStringLiteral("exportDialog"));
  setWindowTitle(mode == Mode::Pack ? tr("Export figure pack") : tr("Export figures"));
  auto* columns = new QHBoxLayout(this);
  auto* left = new QVBoxLayout;
  columns->addLayout(left, 1);

  if (mode == Mode::Figures) {
    left->addWidget(new QLabel(tr("Figures:"), this));
    m_figures = new QListWidget(this);
    m_figures->setObjectName(QStringLiteral("exportFigureList"));
    for (const QString& name : figures) {
      auto* item = new QListWidgetItem(name, m_figures);
      item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
      item->setCheckState(Qt::Checked);
    }
    m_figures->setMaximumHeight(140);
    left->addWidget(m_figures);
  } else {
    left->addWidget(new QLabel(tr("Every figure of the run, each with its CSV, and an index with captions."), this));
    m_compare = new QCheckBox(tr("All %1 open runs, with comparison figures").arg(openRuns), this);
    m_compare->setObjectName(QStringLiteral("exportCompareRuns"));
    m_compare->setVisible(openRuns > 1);
    left->addWidget(m_compare);
  }

  auto* form = new QFormLayout;
  auto* formats = new QHBoxLayout;
  m_pdf = new QCheckBox(QStringLiteral("PDF"), this);
  m_svg = new QCheckBox(QStringLiteral("SVG"), this);
  m_png = new QCheckBox(QStringLiteral("PNG"), this);
  m_csv = new QCheckBox(tr("data (CSV)"), this);
  for (QCheckBox* box : {m_pdf, m_svg, m_png, m_csv}) {
    box->setChecked(true);
    formats->addWidget(box);
  }
  formats->addStretch(1);
  form->addRow(tr("Write"), formats);
  auto* folder = new QHBoxLayout;
  m_outDir = new QLineEdit(this);
  m_outDir->setObjectName(QStringLiteral("exportOutDir"));
  auto* browse = new QPushButton(tr("..."), this);
  folder->addWidget(m_outDir, 1);
  folder->addWidget(browse);
  form->addRow(tr("Folder"), folder);
  m_index = new QComboBox(this);
  m_index->setObjectName(QStringLiteral("exportIndex"));
  m_index->addItem(tr("none"), static_cast<int>(IndexFormat::None));
  m_index->addItem(tr("Markdown (index.md)"), static_cast<int>(IndexFormat::Markdown));
  m_index->addItem(tr("HTML (index.html)"), static_cast<int>(IndexFormat::Html));
  m_index->setCurrentIndex(mode == Mode::Pack ? 1 : 0);
  form->addRow(tr("Index"), m_index);
  left->addLayout(form);

  m_style = new FigureStyleEditor(style, this);
  left->addWidget(m_style);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons->button(QDialogButtonBox::Ok)->setText(tr("Export"));
  left->addWidget(buttons);

  auto* right = new QVBoxLayout;
  right->addWidget(new QLabel(tr("Preview (PNG export, at screen resolution):"), this));
  m_preview = new QLabel(this);
  m_preview->setObjectName(QStringLiteral("exportPreview"));
  m_preview->setMinimumSize(360, 280);
  m_preview->setAlignment(Qt::AlignCenter);
  m_preview->setWordWrap(true);
  m_preview->setStyleSheet(QStringLiteral("background: white; border: 1px solid #ccc;"));
  right->addWidget(m_preview, 1);
  columns->addLayout(right, 1);

  m_previewTimer = new QTimer(this);
  m_previewTimer->setSingleShot(true);
  m_previewTimer->setInterval(150);
  connect(m_previewTimer, &QTimer::timeout, this, &ExportDialog::updatePreview);
  connect(m_style, &FigureStyleEditor::styleChanged, this, &ExportDialog::schedulePreview);
  if (m_figures != nullptr) {
    connect(m_figures, &QListWidget::itemChanged, this, &ExportDialog::schedulePreview);
    connect(m_figures, &QListWidget::currentRowChanged, this, &ExportDialog::schedulePreview);
  }
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(browse, &QPushButton::clicked, this, [this] {
    auto* dialog = new QFileDialog(this, tr("Export to folder"), m_outDir->text());
    dialog->setFileMode(QFileDialog::Directory);
    dialog->setOption(QFileDialog::ShowDirsOnly);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, m_outDir, &QLineEdit::setText);
    dialog->open();
  });
  m_previewFigure = figures.value(0);
}

QStringList ExportDialog::selectedFigures() const {
  if (m_figures == nullptr) {
    return {QStringLiteral("all")};
  }
  QStringList names;
  for (int i = 0; i < m_figures->count(); ++i) {
    if (m_figures->item(i)->checkState() == Qt::Checked) {
      names << m_figures->item(i)->text();
    }
  }
  return names;
}

ExportOptions ExportDialog::options() const {
  ExportOptions options;
  options.outDir = m_outDir->text().trimmed();
  options.style = m_style->style();
  options.formats.clear();
  if (m_pdf->isChecked()) {
    options.formats << FigureFormat::Pdf;
  }
  if (m_svg->isChecked()) {
    options.formats << FigureFormat::Svg;
  }
  if (m_png->isChecked()) {
    options.formats << FigureFormat::Png;
  }
  options.csv = m_csv->isChecked();
  options.index = static_cast<IndexFormat>(m_index->currentData().toInt());
  return options;
}

bool ExportDialog::compareOpenRuns() const { return m_compare != nullptr && m_compare->isVisible() && m_compare->isChecked(); }

void ExportDialog::setOutDir(const QString& dir) { m_outDir->setText(dir); }

void ExportDialog::setFormats(const QList<FigureFormat>& formats) {
  m_pdf->setChecked(formats.contains(FigureFormat::Pdf));
  m_svg->setChecked(formats.contains(FigureFormat::Svg));
  m_png->setChecked(formats.contains(FigureFormat::Png));
}

void ExportDialog::setIndex(IndexFormat index) {
  m_index->setCurrentIndex(std::max(0, m_index->findData(static_cast<int>(index))));
}

void ExportDialog::setPreviewer(Previewer previewer) {
  m_previewer = std::move(previewer);
  updatePreview();
}

QString ExportDialog::previewText() const { return m_preview->text(); }

void ExportDialog::schedulePreview() { m_previewTimer->start(); }

void ExportDialog::updatePreview() {
  if (!m_previewer) {
    return;
  }
  QString figure = m_previewFigure;
  if (m_figures != nullptr) {
    const QStringList selected = selectedFigures();
    const QListWidgetItem* current = m_figures->currentItem();
    figure = current != nullptr && current->checkState() == Qt::Checked ? current->text() : selected.value(0);
  }
  if (figure.isEmpty()) {
    m_preview->setPixmap(QPixmap());
    m_preview->setText(tr("no figure chosen"));
    return;
  }
  QString error;
  const QImage image = m_previewer(figure, m_style->style(), &error);
  if (image.isNull()) {
    m_preview->setPixmap(QPixmap());
    m_preview->setText(error);
    return;
  }
  m_preview->setText(QString());
  m_preview->setToolTip(figure);
  m_preview->setPixmap(QPixmap::fromImage(image));
}

} // namespace kdscope::widgets
