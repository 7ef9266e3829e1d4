"""Bar chart geometry for the dashboard's inline SVG."""

from referrals.web.charts import HEIGHT, bar_chart


def test_bars_scale_to_the_largest_value_and_keep_their_figures() -> None:
    chart = bar_chart([("a", 0), ("b", 5), ("c", 10)], width=300)
    assert [bar.value for bar in chart.bars] == [0, 5, 10]
    assert chart.maximum == 10 and chart.height == HEIGHT
    zero, half, full = chart.bars
    assert zero.height == 0 and zero.y == chart.baseline
    assert full.height == 2 * half.height and full.y + full.height == chart.baseline
    assert [bar.x for bar in chart.bars] == [10.0, 110.0, 210.0]  # 100 per slot, 10% inset
    assert all(bar.width == 80.0 for bar in chart.bars)


def test_no_data_draws_nothing_and_divides_by_nothing() -> None:
    assert bar_chart([]).bars == []
    flat = bar_chart([("a", 0), ("b", 0)])
    assert [bar.height for bar in flat.bars] == [0.0, 0.0] and flat.maximum == 0


def test_labels_under_every_nth_bar_counting_from_the_last() -> None:
    chart = bar_chart(
        [(f"2026-11-{d:02d}", d) for d in range(1, 16)],
        label_every=7,
        shorten=lambda label: label[5:],
    )
    shown = [bar.axis_label for bar in chart.bars if bar.show_label]
    assert shown == ["11-01", "11-08", "11-15"]
    assert chart.bars[0].label == "2026-11-01"
