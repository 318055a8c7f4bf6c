// The payment processors a deployment has credentials for, built from its settings: one Stripe and one Paystack client.
import { createPaystackGateway, type PaystackGateway } from './paystack';
import { createStripeGateway, type StripeGateway } from './stripe';

/** The processor settings of a deployment (config/env.ts's BillopsConfig has this shape). */
export interface ProcessorSettings {
  stripe: { secretKey?: string; apiBase?: string };
  paystack: { secretKey?: string; baseUrl: string; timeoutSeconds: number };
}

export interface PaymentGateways {
  stripe?: StripeGateway;
  paystack?: PaystackGateway;
}

/** Gateways for the processors whose secret keys are set; the others stay absent, so retries report "not configured". */
export function createGatewaysFromConfig(settings: ProcessorSettings): PaymentGateways {
  const gateways: PaymentGateways = {};
  if (settings.stripe.secretKey) {
    gateways.stripe = createStripeGateway({
      secretKey: settings.stripe.secretKey,
      apiBase: settings.stripe.apiBase,
    });
  }
  if (settings.paystack.secretKey) {
    gateways.paystack = createPaystackGateway({
      secretKey: settings.paystack.secretKey,
      baseUrl: settings.paystack.baseUrl,
      timeoutSeconds: settings.paystack.timeoutSeconds,
    });
  }
  return gateways;
}
