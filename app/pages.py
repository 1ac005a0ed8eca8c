"""The dashboard's pages, listed once: the navigation, Home's links and the browser tests all read this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    """One screen: its file under app/, sidebar title and icon, and the line Home shows for it."""

    file: str
    title: str
    icon: str
    what: str

    @property
    def url_path(self) -> str:
        """The URL Streamlit derives from the file name ("/" for the default page)."""
        return "/" if self is PAGES[0] else "/" + self.file.rsplit("/", 1)[-1].removesuffix(".py")


PAGES: tuple[PageInfo, ...] = (
    PageInfo("app_pages/home.py", "Home", ":material/home:", "what the portfolio would cost and why"),
    PageInfo(
        "app_pages/workloads.py",
        "Workloads",
        ":material/timeline:",
        "the recorded traffic: arrivals, token shapes, the (synthetic) enterprise labels",
    ),
    PageInfo(
        "app_pages/benchmarks.py",
        "Hardware & benchmarks",
        ":material/speed:",
        "measure the small models on this machine: speed, memory, energy",
    ),
    PageInfo(
        "app_pages/quality.py",
        "Model quality",
        ":material/fact_check:",
        "measure accuracy and calibrated confidence on enterprise tasks",
    ),
    PageInfo(
        "app_pages/routing.py",
        "Routing replay",
        ":material/alt_route:",
        "every policy on the same requests: cost, quality, latency, residency",
    ),
    PageInfo(
        "app_pages/projection.py",
        "Projection",
        ":material/trending_up:",
        "months ahead: hardware, energy, price trends, break-even, uncertainty",
    ),
    PageInfo(
        "app_pages/claims.py", "Vendor claims", ":material/gavel:", "test a vendor's claim against your own traffic"
    ),
)


def page(title: str) -> PageInfo:
    """The page with this sidebar title (KeyError names the known ones)."""
    for info in PAGES:
        if info.title == title:
            return info
    raise KeyError(f"no page titled {title!r}; pages: {', '.join(p.title for p in PAGES)}")
