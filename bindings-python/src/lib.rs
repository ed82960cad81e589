//! The Proliferate client for python: conversion, async bridging and error mapping over `proliferate-client`.
