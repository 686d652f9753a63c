"""Themes: the studio's look, and small cached themes for coloured items (curves, group headers)."""

from __future__ import annotations

from typing import Callable, Hashable

import dearpygui.dearpygui as dpg

#: The window's background: the viewport's clear colour (Dear PyGui's default window colour), so that
#: no widget needs to paint a full-window background (see App._build).
BACKGROUND = (37, 37, 38, 255)

_cache: dict[Hashable, int] = {}


def cached(key: Hashable, build: Callable[[], int]) -> int:
    """The theme for ``key``, built once per Dear PyGui context."""
    if key not in _cache:
        _cache[key] = build()
    return _cache[key]


def forget() -> None:
    """Drop cached themes (their context is being destroyed)."""
    _cache.clear()


def line_theme(color: tuple[int, ...]) -> int:
    """Line series in ``color``, 1.5 pixels wide."""
    rgb = tuple(int(c) for c in color[:3])

    def build() -> int:
        with dpg.theme() as theme:
            with dpg.theme_component(dpg.mvLineSeries):
                dpg.add_theme_color(dpg.mvPlotCol_Line, (*rgb, 255), category=dpg.mvThemeCat_Plots)
                dpg.add_theme_style(dpg.mvPlotStyleVar_LineWeight, 1.5, category=dpg.mvThemeCat_Plots)
        return theme

    return cached(("line", rgb), build)


def header_theme(color: tuple[int, ...]) -> int:
    """A collapsing header tinted with a group's curve colour."""
    rgb = tuple(int(c) for c in color[:3])

    def build() -> int:
        with dpg.theme() as theme:
            with dpg.theme_component(dpg.mvCollapsingHeader):
                dpg.add_theme_color(dpg.mvThemeCol_Header, (*rgb, 110))
                dpg.add_theme_color(dpg.mvThemeCol_HeaderHovered, (*rgb, 160))
                dpg.add_theme_color(dpg.mvThemeCol_HeaderActive, (*rgb, 200))
        return theme

    return cached(("header", rgb), build)


def studio_theme() -> int:
    """Global style: a little more air than Dear ImGui's defaults, rounded frames."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_FrameRounding, 3)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 6, 4)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8, 5)
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 8, 6)
            dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0))  # panels show the window background
        with dpg.theme_component(dpg.mvPlot):
            # Plots are drawn over the window background instead of painting their own: with
            # software OpenGL every filled pixel costs.
            dpg.add_theme_color(dpg.mvPlotCol_FrameBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
            dpg.add_theme_color(dpg.mvPlotCol_PlotBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
    return theme
