#include "widgets/shell/application.h"

#include <QApplication>
#include <QFileInfo>
#include <QGuiApplication>
#include <QIcon>
#include <QImage>
#include <QPixmap>
#include <QScreen>
#include <QTabWidget>
#include <QTimer>

#include <cstdio>
#include <exception>

#include "widgets/figures/figure_style.h"
#include "widgets/shell/main_window.h"

namespace kdscope::widgets {

namespace {

// With KDSCOPE_SCREENSHOT=PATH the window takes a screenshot of the whole screen (through the
// display server, so it shows what was really drawn) this long after start-up, saves it to
// PATH (format from the suffix) and quits. Used by the Xvfb smoke test.
constexpr int kScreenshotDelayMs = 3000;

} // namespace

int runApplication(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("KDScope"));
  QApplication::setOrganizationName(QStringLiteral("KDScope"));
  initResources();
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/kdscope/icons/kdscope.svg")));
  // Matches resources/kdscope.desktop, so a desktop shell groups the window with its launcher.
  QGuiApplication::setDesktopFileName(QStringLiteral("kdscope"));
  int status = 0;
  try {
    MainWindow window;
    window.show();
    if (argc == 2) {
      const QString path = QString::fromLocal8Bit(argv[1]);
      // After the window is shown, so a message box about a bad file has a parent on screen.
      QTimer::singleShot(0, &window, [&window, path] { window.openRun(path); });
    }
    // KDSCOPE_SCREENSHOT_TAB=NAME shows that tab (e.g. "Heads") before the screenshot.
    const QString tab = qEnvironmentVariable("KDSCOPE_SCREENSHOT_TAB");
    if (!tab.isEmpty()) {
      QTimer::singleShot(500, &window, [&window, tab] {
        for (int i = 0; i < window.tabs()->count(); ++i) {
          if (window.tabs()->tabText(i).compare(tab, Qt::CaseInsensitive) == 0) {
            window.tabs()->setCurrentIndex(i);
          }
        }
      });
    }
    const QString screenshot = qEnvironmentVariable("KDSCOPE_SCREENSHOT");
    if (!screenshot.isEmpty()) {
      QTimer::singleShot(kScreenshotDelayMs, &window, [&window, screenshot] {
        QPixmap shot;
        if (QScreen* screen = QGuiApplication::primaryScreen()) {
          shot = screen->grabWindow(0);
        }
        if (shot.isNull()) {
          shot = window.grab(); // platforms without screen grabs (offscreen)
        }
        const bool saved = shot.save(screenshot);
        std::fprintf(stderr, "kdscope: screenshot %dx%d %s %s\n", shot.width(), shot.height(),
                     saved ? "saved to" : "could not be saved to", screenshot.toLocal8Bit().constData());
        QApplication::exit(saved ? 0 : 1);
      });
    }
    status = QApplication::exec();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kdscope: %s\n", error.what());
    return 1;
  }
  return status;
}

} // namespace kdscope::widgets
