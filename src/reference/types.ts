/** Reference data as stored in the file (schemas/json/reference-data.schema.json). */

export type Region = 'europe' | 'north_america' | 'latin_america' | 'apac' | 'africa' | 'middle_east';
export type CurrencyCode = 'EUR' | 'USD';
/** A decimal number written as a string, e.g. "0.25". Never a float. */
export type DecimalString = string;

export interface Country {
  id: number;
  name: string;
  iso_code: string;
  mcc: string;
  country_code: string;
  region: Region;
  utc_offset_hours?: number;
}

export interface Operator {
  id: number;
  name: string;
  country_id: number;
  mncs: string[];
  tapcode?: string;
}

export interface Ratezone {
  id: number;
  name: string;
  operator_ids: number[];
  rates: { data_per_mb: DecimalString; sms_mo: DecimalString; sms_mt?: DecimalString };
  inclusive_volume?: { volume_mb: DecimalString; excess_per_mb: DecimalString };
}

export interface Tariff {
  id: number;
  version: number;
  name: string;
  currency: CurrencyCode;
  data_blocksize_bytes: number;
  default_sms_mt_rate: DecimalString;
  ratezones: Ratezone[];
}

export interface TariffProfile {
  id: number;
  name: string;
  tariff_id: number;
  ratezone_ids: number[];
}

export interface ServiceProfile {
  id: number;
  name: string;
  services: { data: boolean; sms_mo: boolean; sms_mt: boolean };
  limits?: { data_mb?: DecimalString; sms?: number; warning_percentage?: number };
  apply_data_quota?: boolean;
  apply_sms_quota?: boolean;
  breakout_region?: string;
}

export interface Organisation {
  id: number;
  name: string;
  currency: CurrencyCode;
  monthly_cost_limit?: DecimalString;
}

export interface ImsiEntry {
  id: number;
  imsi: string;
  import_date: string;
  /** Regions where the SIM applet prefers this IMSI; the first IMSI is the fallback. */
  preferred_regions?: Region[];
}

export interface Sim {
  id: number;
  iccid: string;
  msisdn?: string;
  production_date: string;
  imsis: ImsiEntry[];
}

export type Mobility = 'static' | 'national' | 'international';
export type DeviceProfile = 'meter' | 'tracker' | 'gateway';

export interface Deployment {
  countries?: string[];
  mobility?: Mobility;
  profile?: DeviceProfile;
}

export interface Endpoint {
  id: number;
  name: string;
  imei?: string;
  ip_address?: string;
  tags?: string | null;
  status: 'Enabled' | 'Disabled';
  organisation_id: number;
  sim_id: number;
  service_profile_id: number;
  tariff_profile_id: number;
  deployment?: Deployment;
}

export interface ImsiRange {
  first_imsi: string;
  first_imsi_id: number;
  preferred_regions?: Region[];
}

export interface Fleet {
  name_prefix: string;
  count: number;
  organisation_id: number;
  service_profile_id: number;
  tariff_profile_id: number;
  tags?: string | null;
  first_endpoint_id: number;
  first_sim_id: number;
  first_iccid: string;
  first_msisdn: string;
  imsi_ranges: ImsiRange[];
  production_date: string;
  device_tac: string;
  first_ip_address: string;
  deployment?: Deployment;
}

export interface ReferenceData {
  format: 'data-streamer/reference-data';
  version: 1;
  generated_by?: Record<string, unknown>;
  countries: Country[];
  operators: Operator[];
  tariffs: Tariff[];
  tariff_profiles: TariffProfile[];
  service_profiles: ServiceProfile[];
  organisations: Organisation[];
  sims?: Sim[];
  endpoints?: Endpoint[];
  fleets?: Fleet[];
}
