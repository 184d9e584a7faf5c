import type { SourceDocument } from '../../functions/core/documents.js';

/** A small help-centre corpus with metadata, for engine tests. */
export const HELP_CENTRE: SourceDocument[] = [
  {
    id: 'reset-password',
    title: 'Reset your password',
    text: 'If you forgot your password, click "Forgot password" on the login page. We e-mail you a reset link that is valid for one hour.',
    metadata: { category: 'account', lang: 'en' },
  },
  {
    id: 'two-factor',
    title: 'Turn on two-factor authentication',
    text: 'Protect your account with a second step at sign-in. Open Security settings and scan the QR code with an authenticator app.',
    metadata: { category: 'account', lang: 'en' },
  },
  {
    id: 'invoice-download',
    title: 'Download an invoice',
    text: 'Invoices for every billing period are listed under Billing. Select a month and press Download PDF.',
    metadata: { category: 'billing', lang: 'en' },
  },
  {
    id: 'change-plan',
    title: 'Upgrade or downgrade your plan',
    text: 'You can change your subscription plan at any time. Upgrades take effect immediately and are prorated; downgrades apply at the next renewal.',
    metadata: { category: 'billing', lang: 'en', tags: ['plans', 'pricing'] },
  },
  {
    id: 'refund-policy',
    title: 'Refund policy',
    text: 'We refund annual subscriptions within thirty days of purchase. Monthly plans are not refundable, but you can cancel before the next renewal.',
    metadata: { category: 'billing', lang: 'en' },
  },
  {
    id: 'shipping-times',
    title: 'Shipping times',
    text: 'Standard shipping takes five to seven business days. Express shipping arrives within two business days in most regions.',
    metadata: { category: 'orders', lang: 'en' },
  },
  {
    id: 'track-order',
    title: 'Track your order',
    text: 'Once your parcel ships we send a tracking number by e-mail. Enter it on the carrier website to see where your order is.',
    metadata: { category: 'orders', lang: 'en' },
  },
  {
    id: 'api-keys',
    title: 'Create an API key',
    text: 'Developers can create API keys under Settings, then Developer. Keys inherit the permissions of the user who created them; rotate them regularly.',
    metadata: { category: 'developers', lang: 'en' },
  },
  {
    id: 'webhooks',
    title: 'Receive events with webhooks',
    text: 'Webhooks send an HTTP POST request to your endpoint whenever an event happens, such as a payment succeeding or an order shipping.',
    metadata: { category: 'developers', lang: 'en' },
  },
  {
    id: 'mot-de-passe',
    title: 'Réinitialiser votre mot de passe',
    text: 'Si vous avez oublié votre mot de passe, cliquez sur « Mot de passe oublié » sur la page de connexion.',
    metadata: { category: 'account', lang: 'fr' },
  },
];
