/* The store page's 90-day chart: the rolling rate (line) and count (bars) against each
   tier's lines. The data is in the page (a JSON script element): nothing is fetched.
   ECharts is served from /static like every other asset. */
(function () {
  "use strict";

  var PALETTE = ["#b42318", "#b54708", "#6941c6", "#175cd3"];

  function draw(element) {
    var source = document.getElementById(element.getAttribute("data-source"));
    if (!source || typeof echarts === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var labels = data.labels;
    var markRate = [];
    var markCount = [];
    data.lines.forEach(function (line, index) {
      var colour = PALETTE[index % PALETTE.length];
      markRate.push({
        yAxis: line.rate,
        name: line.label,
        lineStyle: { color: colour, type: "dashed", width: 1.5 },
        label: { formatter: line.label + " " + line.rate + "%", color: colour, position: "insideEndTop" }
      });
      markCount.push({
        yAxis: line.min_count,
        name: line.label,
        lineStyle: { color: colour, type: "dotted", width: 1, opacity: 0.7 },
        label: { formatter: line.label + " ≥" + line.min_count, color: colour, position: "insideStartBottom" }
      });
    });
    var maxLine = data.lines.reduce(function (m, l) { return Math.max(m, l.rate); }, 0);
    var maxRate = data.rate.reduce(function (m, r) { return r === null ? m : Math.max(m, r); }, 0);
    var maxMin = data.lines.reduce(function (m, l) { return Math.max(m, l.min_count); }, 0);
    var maxCount = data.count.reduce(function (m, c) { return Math.max(m, c); }, 0);
    var series = [
      {
        name: labels.count,
        type: "bar",
        yAxisIndex: 1,
        data: data.count,
        itemStyle: { color: "rgba(71, 84, 103, 0.28)" },
        barMaxWidth: 8,
        markLine: { symbol: "none", silent: true, data: markCount }
      },
      {
        name: labels.rate,
        type: "line",
        data: data.rate,
        showSymbol: false,
        connectNulls: false,
        lineStyle: { width: 2.5, color: "#1d2939" },
        itemStyle: { color: "#1d2939" },
        markLine: { symbol: "none", silent: true, data: markRate }
      }
    ];
    if (data.platform && data.platform.length) {
      series.push({
        name: labels.platform,
        type: "scatter",
        data: data.platform,
        symbolSize: 9,
        itemStyle: { color: "#0e9384" }
      });
    }
    var chart = echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 48, right: 40, top: 40, bottom: 56, containLabel: false },
      legend: { top: 0, data: series.map(function (s) { return s.name; }) },
      tooltip: {
        trigger: "axis",
        valueFormatter: function (value) { return value === null || value === undefined ? "—" : value; }
      },
      xAxis: { type: "category", data: data.days, axisLabel: { hideOverlap: true } },
      yAxis: [
        {
          type: "value",
          min: 0,
          max: Math.ceil(Math.max(maxRate, maxLine * 1.25, 0.5) * 10) / 10,
          axisLabel: { formatter: "{value}%" },
          splitLine: { lineStyle: { color: "#eaecf0" } }
        },
        {
          type: "value",
          min: 0,
          max: Math.max(maxCount, Math.ceil(maxMin * 1.25), 1),
          minInterval: 1,
          splitLine: { show: false }
        }
      ],
      dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
      series: series
    });
    element.setAttribute("data-drawn", "true");
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () { chart.resize(); }).observe(element);
    } else {
      window.addEventListener("resize", function () { chart.resize(); });
    }
  }

  function start() {
    var charts = document.querySelectorAll('[data-chart="rate-history"]');
    for (var i = 0; i < charts.length; i += 1) {
      draw(charts[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
