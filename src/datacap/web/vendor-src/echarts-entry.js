// The parts of Apache ECharts the dashboard uses, bundled into one file by `npm run vendor`:
// about half the size of the full build, so phones parse it in half the time.
import * as echarts from "echarts/core";
import { BarChart, HeatmapChart, LineChart } from "echarts/charts";
import {
  DataZoomComponent, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, VisualMapComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, HeatmapChart, LineChart, DataZoomComponent, GridComponent, LegendComponent,
  MarkLineComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

export const { init, getInstanceByDom, version } = echarts;
