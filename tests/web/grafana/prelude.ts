// Types the generated dashboard checks (tests/it/grafana.rs) share.
//
// The dashboard JSON is checked against Grafana's own published types (npm
// @grafana/schema, pinned in ../package.json to the Grafana release the JSON targets).
// Two adaptations, both about JSON rather than about the model:
// - `Json<T>`: JSON has no TypeScript enums. Grafana's string enums (ThresholdsMode,
//   BigValueColorMode, ...) become the union of their string values (`${E}`), numeric
//   enums stay as they are (a number literal in range is assignable). Everything else
//   is kept, including required and optional properties, so a misspelt or missing
//   key or a wrong value type still fails.
// - `InfluxQuery`: @grafana/schema publishes no type for the InfluxDB datasource's
//   query. This one follows the fields Grafana's InfluxDB plugin reads
//   (public/app/plugins/datasource/influxdb/types.ts and its annotation editor in
//   components/editor/annotation/AnnotationEditor.tsx), on top of the published
//   DataQuery.
import type { DataQuery } from '@grafana/schema';

export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

export interface InfluxQuery extends DataQuery {
  query: string;
  rawQuery: boolean;
  resultFormat?: 'time_series' | 'table' | 'logs';
  alias?: string;
  fromAnnotations?: boolean;
  textEditor?: boolean;
  textColumn?: string;
  tagsColumn?: string;
  titleColumn?: string;
  timeEndColumn?: string;
}
